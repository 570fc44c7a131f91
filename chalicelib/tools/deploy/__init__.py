"""Deploying branchenv to a real AWS account: the Chalice package, then Terraform.

``branchenv deploy`` (chalicelib/tools/commands/deploy.py) runs, in order:

1. :func:`stage_project` copies the app into a build folder with the Lambda's
   requirements, and :func:`package_app` runs ``chalice package --pkg-format terraform``
   there, writing ``chalice.tf.json`` and ``deployment.zip`` into ``terraform/chalice/``
   (:mod:`chalicelib.tools.deploy.package`);
2. :func:`write_override` writes ``terraform/chalice/chalice_override.tf.json``
   (:func:`chalice_override`, :mod:`chalicelib.tools.deploy.override`): every generated function
   gets the installation's environment, role, timeout and log group; the SQS event source
   points at the real work queue, with a maximum concurrency and partial batch responses;
   with ``dashboard_auth = "iam"`` every API method but the GitHub webhook requires AWS_IAM
   (:mod:`chalicelib.tools.deploy.dashboard_auth`); AWS event rules are narrowed to this
   installation; Chalice's old Terraform and provider pins are replaced;
3. :class:`Deployer` (:mod:`chalicelib.tools.deploy.deployer`) runs ``terraform init``, ``plan``
   (shown, then confirmed) and ``apply`` through a :class:`Terraform` runner
   (:mod:`chalicelib.tools.deploy.terraform`), and reads the outputs.

Everything outside (the terraform binary, credentials, the question to the user, the
list of live environments) is passed in, so tests use fakes. This package never prints a
secret: it prints secret ARNs, never values, and it never calls an AWS API itself.

This module only re-exports the public names of its submodules, so callers import from
``chalicelib.tools.deploy``; the submodules import each other, never this module.
"""

from __future__ import annotations

from chalicelib.tools.deploy.dashboard_auth import (
    IAM_MODE,
    OPEN_METHODS,
    SIGV4,
    SIGV4_SCHEME,
    SWAGGER_LOCAL,
    dashboard_auth_swagger,
)
from chalicelib.tools.deploy.deployer import PACKAGE_FOLDER, PLAN_FILE, STAGING_FOLDER, Deployer
from chalicelib.tools.deploy.errors import DeployError
from chalicelib.tools.deploy.override import (
    API_HANDLER,
    EVENT_FILTERS,
    OVERRIDE_FILE,
    PLACEHOLDER_QUEUE,
    REQUEST_HANDLERS,
    TERRAFORM_PINS,
    WAKER_HANDLER,
    WORKER_EVENT_SOURCE,
    chalice_override,
    narrow_event_pattern,
    write_override,
)
from chalicelib.tools.deploy.package import (
    GENERATED_TEMPLATE,
    NOT_FOR_LAMBDA,
    NOT_PACKAGED,
    STAGE,
    Runner,
    lambda_requirements,
    package_app,
    stage_project,
)
from chalicelib.tools.deploy.terraform import Plan, PythonTerraform, Terraform

__all__ = [
    "API_HANDLER",
    "EVENT_FILTERS",
    "GENERATED_TEMPLATE",
    "IAM_MODE",
    "NOT_FOR_LAMBDA",
    "NOT_PACKAGED",
    "OPEN_METHODS",
    "OVERRIDE_FILE",
    "PACKAGE_FOLDER",
    "PLACEHOLDER_QUEUE",
    "PLAN_FILE",
    "REQUEST_HANDLERS",
    "SIGV4",
    "SIGV4_SCHEME",
    "STAGE",
    "STAGING_FOLDER",
    "SWAGGER_LOCAL",
    "TERRAFORM_PINS",
    "WAKER_HANDLER",
    "WORKER_EVENT_SOURCE",
    "DeployError",
    "Deployer",
    "Plan",
    "PythonTerraform",
    "Runner",
    "Terraform",
    "chalice_override",
    "dashboard_auth_swagger",
    "lambda_requirements",
    "narrow_event_pattern",
    "package_app",
    "stage_project",
    "write_override",
]
