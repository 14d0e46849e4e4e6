"""One APIRouter per noun; facade.main includes them all."""
