"""Converge: make AWS hold exactly what one environment's desired state asks for.

The only way branchenv changes AWS. It has two halves, in the shape of Chalice's own
deployer: :func:`plan` is pure (desired state + what AWS holds → a list of frozen steps,
printable as a dry run) and :class:`Converger` observes, plans and executes.

Every step looks before it acts and tolerates "already done" / "already gone", and
everything is found again by name or by tag, so converge is idempotent and safe to
interrupt after any AWS call: running it again finishes the job and leaks nothing.
Nothing is ever deleted unless its tags (or, for DNS, its TXT owner record) say it
belongs to this environment.

The package, by responsibility (each module depends only on those above it):

- :mod:`.model`: the frozen models (Signal, Observed, Target, the steps, Plan), the
  ownership tags and the exceptions;
- :mod:`.progress`: what a run has found or made so far;
- :mod:`.kinds`: one module per resource kind (DNS record, priority claim, target group,
  listener rule, image tags, task definition, service): how it is found, what the record
  keeps of it, its step runners, how a leftover of it is removed; and the registry of
  kinds in teardown order that the planner, the reaper and the tests use;
- :mod:`.status`: the one place that decides building, deploying, ready or failed
  (readiness and rollback);
- :mod:`.recorded`: observation from the record, and what a finished run writes into it;
- :mod:`.planner`: the pure planner;
- :mod:`.runners`: the executor, a step → runner match that mypy proves complete;
- :mod:`.repo_configs`: branchenv.yml at the sha, read once for converge and the reaper;
- :mod:`.targets`: the target builder (branchenv.yml at the sha, rendering, policy,
  placement on the pool's listener with most room);
- :mod:`.converger`: the Converger (observe, plan, run, finish and save).

Importers use this package's names; they are re-exported here.
"""

from chalicelib.engine.converge.converger import Converger, ConvergeResult
from chalicelib.engine.converge.kinds.priority import MAX_PRIORITY
from chalicelib.engine.converge.kinds.rule import PRIORITY_ATTEMPTS
from chalicelib.engine.converge.model import (
    OWNERSHIP_KEYS,
    SHA_TAG,
    SPEC_TAG,
    AwaitHealthyTarget,
    ClaimPriority,
    CreateRule,
    CreateService,
    CreateTargetGroup,
    DeleteDns,
    DeleteDnsByHost,
    DeleteRule,
    DeleteService,
    DeleteTargetGroup,
    DeregisterTaskDefinitions,
    NoRoom,
    Observed,
    Plan,
    RegisterTaskDefinition,
    ReleasePriority,
    RemoveImageTags,
    RetagImage,
    RetryLater,
    SetHealthCheckPath,
    Signal,
    StartBuild,
    Step,
    StopBuild,
    TagBranchImage,
    Target,
    UpdateService,
    UpsertDns,
)
from chalicelib.engine.converge.planner import plan, spec_fingerprint
from chalicelib.engine.converge.repo_configs import ConfigSource, RepoConfigSource
from chalicelib.engine.converge.targets import log_group_url, retag_source

__all__ = [
    "MAX_PRIORITY",
    "OWNERSHIP_KEYS",
    "PRIORITY_ATTEMPTS",
    "SHA_TAG",
    "SPEC_TAG",
    "AwaitHealthyTarget",
    "ClaimPriority",
    "ConfigSource",
    "ConvergeResult",
    "Converger",
    "CreateRule",
    "CreateService",
    "CreateTargetGroup",
    "DeleteDns",
    "DeleteDnsByHost",
    "DeleteRule",
    "DeleteService",
    "DeleteTargetGroup",
    "DeregisterTaskDefinitions",
    "NoRoom",
    "Observed",
    "Plan",
    "RegisterTaskDefinition",
    "ReleasePriority",
    "RemoveImageTags",
    "RepoConfigSource",
    "RetagImage",
    "RetryLater",
    "SetHealthCheckPath",
    "Signal",
    "StartBuild",
    "Step",
    "StopBuild",
    "TagBranchImage",
    "Target",
    "UpdateService",
    "UpsertDns",
    "log_group_url",
    "plan",
    "retag_source",
    "spec_fingerprint",
]
