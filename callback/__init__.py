"""The callback receiver: takes signed results pushed by the facade, stores them durably, lists them."""
