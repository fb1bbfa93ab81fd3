"""The Lambda functions' shared packaging: one asset, the Powertools layer, role and log group.

Everything here is built without Docker: the asset is the ``lambda_src`` folder as it is (the
handlers use only the standard library, boto3 from the runtime and Powertools from the layer).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"

#: Nothing but the Python packages ships: caches, tests, packaging metadata and tooling stay out.
ASSET_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "*.egg-info",
    "**/*.egg-info",
    "tests",
    "**/tests",
    "**/test_*.py",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    ".mypy_cache",
    "**/.DS_Store",
]

#: The function runtime; the layer below is built for the same Python minor and architecture.
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
#: AWS publishes each Powertools release's layer ARN under this public SSM path, per architecture and Python.
POWERTOOLS_PARAMETER = "/aws/service/powertools/python/arm64/python3.13/{version}"

SERVICE_NAME = "codewatch"
METRICS_NAMESPACE = "Codewatch"

_LOG_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def powertools_layer_arn(scope: Construct, version: str) -> str:
    """The AWS-published layer of exactly this Powertools release, in the stack's region.

    Resolved by CloudFormation from AWS's public parameter at deploy time (synth stays offline), so the
    layer is the release the tests ran against (requirements-dev.txt pins the same version), not a
    layer version number whose contents nobody checked.
    """
    return ssm.StringParameter.value_for_string_parameter(scope, POWERTOOLS_PARAMETER.format(version=version))


class LambdaPackaging(Construct):
    """What both functions share: the code asset and the Powertools layer."""

    def __init__(self, scope: Construct, construct_id: str, *, powertools_version: str) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(LAMBDA_SRC), exclude=ASSET_EXCLUDES)
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "PowertoolsLayer", powertools_layer_arn(self, powertools_version)
        )


class PipelineFunction(Construct):
    """A function with its own role (no managed policies) and its own KMS-encrypted log group.

    The role starts empty; each caller grants exactly what its handler does. Logging permissions are
    scoped to the one log group instead of AWSLambdaBasicExecutionRole's ``logs:*`` on every group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        packaging: LambdaPackaging,
        handler: str,
        description: str,
        environment: dict[str, str],
        memory_mb: int,
        timeout: Duration,
        logs_key: kms.IKey,
        log_retention_days: int,
        role_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            encryption_key=logs_key,
            retention=_LOG_RETENTION[log_retention_days],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"codewatch {construct_id}: least privilege, granted per resource",
            role_name=role_name,
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            code=packaging.code,
            handler=handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            layers=[packaging.powertools],
            description=description,
            environment=environment,
            memory_size=memory_mb,
            timeout=timeout,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Active tracing: X-Ray shows each invocation and its duration next to the event source's.
            tracing=lambda_.Tracing.ACTIVE,
        )
