"""Start-up state restoration; lives in `policyengine.audit.restore` (the CLI's review
commands use it too, without the server's dependencies)."""

from policyengine.audit.restore import Restored, restore_state

__all__ = ["Restored", "restore_state"]
