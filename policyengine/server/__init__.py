"""`policyengine serve`: the HTTP decision API, its metrics, and the service behind it.

Needs the `server` extra (`pip install 'policyengine[server]'`): nothing in the core
package imports this one.
"""

from policyengine.server.app import create_app
from policyengine.server.jsonlog import JsonFormatter, log_config
from policyengine.server.metrics import Metrics
from policyengine.server.problems import Problem
from policyengine.server.restore import Restored, restore_state
from policyengine.server.runner import bind_socket, is_loopback, run
from policyengine.server.service import Decided, DecisionService, Verdict, policy_fingerprint
from policyengine.server.settings import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    ServerSettings,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PORT",
    "Decided",
    "DecisionService",
    "JsonFormatter",
    "Metrics",
    "Problem",
    "Restored",
    "ServerSettings",
    "Verdict",
    "bind_socket",
    "create_app",
    "is_loopback",
    "log_config",
    "policy_fingerprint",
    "restore_state",
    "run",
]
