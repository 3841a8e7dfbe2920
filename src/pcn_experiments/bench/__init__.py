"""Speed measurements run by `pcn bench ...` (figures, never timed assertions)."""
