"""The SQL rule engine: eKuiper's streams, rules and windows, run on Arrow batches.

- :mod:`.streams` and :mod:`.catalog`: CREATE STREAM definitions and where they are kept;
- :mod:`.sql`, :mod:`.compiler`, :mod:`.planner`: a rule's SELECT, checked and compiled into
  closures over pyarrow.compute;
- :mod:`.functions`: the built-in functions (:data:`BUILTIN_NAMES`);
- :mod:`.windows`, :mod:`.pipeline`: windows and operators over RecordBatches;
- :mod:`.runtime`, :mod:`.rule_manager`: running rules (threads, bounded queues, metrics) and
  the API the REST layer calls.
"""

from __future__ import annotations

from .catalog import Catalog
from .clock import Clock, ManualClock, SystemClock
from .errors import AlreadyExistsError, NotFoundError, RuleError, SqlError
from .functions import BUILTIN_NAMES
from .rule_manager import RuleManager
from .rules import RuleDef
from .streams import StreamDef, parse_create_stream, parse_stream_statement

__all__ = [
    "AlreadyExistsError",
    "BUILTIN_NAMES",
    "Catalog",
    "Clock",
    "ManualClock",
    "NotFoundError",
    "RuleDef",
    "RuleError",
    "RuleManager",
    "SqlError",
    "StreamDef",
    "SystemClock",
    "parse_create_stream",
    "parse_stream_statement",
]
