"""One background follower per ModelAlias: watch a rollout in progress, poll the alias.

kopf's own daemons and timers would do this, but kopf blocks the deletion of every resource that
has one with its finalizer (so that it can stop them first), and a finalizer outlives an operator
uninstalled together with its resources. These tasks need no such goodbye: a deleted resource's
follower is cancelled when the deletion is seen, and a step racing the deletion finds the resource
gone and does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from btcf_operator.reconcile import reconcile
from btcf_operator.spec import SpecError
from btcf_operator.step import Context, InvalidTarget, ObjectState, RetryLater
from btcforecast.kube import KubeError, KubeUnavailable

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name) of a ModelAlias."""

STOP_TIMEOUT = 5.0


async def follow(ctx: Context, namespace: str, name: str, state: ObjectState) -> None:
    """One reconciliation step every ``progress_interval``, until the resource is gone.

    Gone means the API says so (a deletion whose watch event was missed, say); a resource that
    comes back gets a new follower from its next watch event.
    """
    where = f"{namespace}/{name}"
    while True:
        try:
            if not await reconcile(ctx, namespace, name, state, force=False):
                logger.info("%s: gone; no longer followed", where)
                return
        except (RetryLater, InvalidTarget) as e:
            logger.info("%s: will look again: %s", where, e)
        except SpecError as e:
            logger.error("%s: invalid spec: %s", where, e)
        except (KubeError, KubeUnavailable) as e:
            logger.warning("%s: Kubernetes API: %s", where, e)
        except Exception:  # keep following the alias whatever one step ran into
            logger.exception("%s: reconciliation step failed", where)
        if await state.nap(ctx.settings.progress_interval):  # or less: a webhook wakes it
            logger.debug("%s: woken by an MLflow webhook", where)


class Followers:
    """The running followers, by resource; started at most once each, stopped on deletion or exit."""

    def __init__(self) -> None:
        self._tasks: dict[Key, asyncio.Task[None]] = {}

    def ensure(self, key: Key, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``start()`` as the follower of ``key`` unless one runs already."""
        task = self._tasks.get(key)
        if task is None or task.done():
            self._tasks[key] = asyncio.create_task(start(), name=f"follow {key[0]}/{key[1]}")

    async def stop(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            await _cancel(task)

    async def stop_all(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        await asyncio.gather(*(_cancel(task) for task in tasks))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait({task}, timeout=STOP_TIMEOUT)  # a step stuck in a worker thread is left behind
