"""Create, on the emulator, what the synthesized template declares: nothing is described twice.

moto's CloudFormation cannot deploy our template (no ``AWS::SQS::QueuePolicy``, no
``AWS::CloudWatch::Alarm``, Lambda assets need the bootstrap bucket; DESIGN.md), so this reads the
resource types the pipeline's behaviour depends on and creates them through the service APIs:
queues and their redrive policies, the rules with their patterns and targets, the window table (keys,
TTL, stream), the allowlist parameter, the functions' handlers and environments, and the event-source
mappings. IAM roles are created with their trust and inline policies, because other accounts name them
by ARN (a forwarder's target role, the member-findings role the publisher assumes); moto does not
enforce them. Encryption, alarms and the dashboard do not change behaviour and are not emulated.

Resources under a CloudFormation ``Condition`` that is false in this account and region are skipped.
A forwarder template (no table, no functions) provisions too: pass the member account's ``session``
and ``account`` to create it there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3

DEFAULT_ACCOUNT = "123456789012"  # moto's account


class TemplateError(ValueError):
    """The template lacks something the pipeline needs."""


@dataclass
class Function:
    logical_id: str
    handler: str
    environment: dict[str, str]
    timeout: int


@dataclass
class Mapping:
    function: Function
    source_arn: str
    properties: dict[str, Any]


@dataclass
class Deployment:
    region: str
    account: str
    # Whose credentials create the resources (moto derives the account from the access key); None is
    # boto3's default session, with its credentials and event hooks, like every other client here.
    session: boto3.Session | None = field(default=None, repr=False)
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical ID -> URL
    queue_arns: dict[str, str] = field(default_factory=dict)
    dead_letter_queues: dict[str, str] = field(default_factory=dict)  # logical ID -> URL (DLQs of queues and targets)
    table_name: str = ""
    stream_arn: str = ""
    parameter_name: str = ""
    functions: dict[str, Function] = field(default_factory=dict)
    mappings: list[Mapping] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        make = self.session.client if self.session else boto3.client
        return make(service, region_name=self.region)

    def mapping_for(self, handler: str) -> Mapping:
        for mapping in self.mappings:
            if mapping.function.handler == handler:
                return mapping
        raise TemplateError(f"no event-source mapping feeds {handler}")


def _resources(template: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, resource.get("Properties", {}))
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == kind
    ]


class _Resolver:
    """Just enough of CloudFormation's intrinsic functions for the properties we read."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.refs: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self.conditions: dict[str, Any] = {}  # name -> expression from the template's Conditions

    def condition(self, expression: Any) -> bool:
        """A condition's value here: ``Fn::Equals``/``Not``/``And``/``Or`` and references to other conditions."""
        if isinstance(expression, str):
            expression = {"Condition": expression}
        [(function, arguments)] = expression.items()
        if function == "Condition":
            return self.condition(self.conditions[arguments])
        if function == "Fn::Equals":
            left, right = self(arguments)
            return bool(left == right)
        if function == "Fn::Not":
            return not self.condition(arguments[0])
        if function == "Fn::And":
            return all(self.condition(argument) for argument in arguments)
        if function == "Fn::Or":
            return any(self.condition(argument) for argument in arguments)
        raise TemplateError(f"unsupported condition function {function}")

    def pseudo(self, name: str) -> str:
        return {
            "AWS::Region": self.deployment.region,
            "AWS::AccountId": self.deployment.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }[name]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            return self.pseudo(name) if name.startswith("AWS::") else self.refs[name]
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.attributes[(logical_id, attribute)]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self(part)) for part in parts)
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]

            def substitute(found: re.Match[str]) -> str:
                name = found.group(1)
                if name.startswith("AWS::"):
                    return self.pseudo(name)
                logical_id, _, attribute = name.partition(".")
                return self.attributes[(logical_id, attribute)] if attribute else self.refs[logical_id]

            return re.sub(r"\$\{([^}]+)\}", substitute, text)
        return {key: self(item) for key, item in value.items()}


def provision(
    template: dict[str, Any], region: str, account: str = DEFAULT_ACCOUNT, session: boto3.Session | None = None
) -> Deployment:
    deployment = Deployment(region=region, account=account, session=session)
    resolve = _Resolver(deployment)
    template = _active(template, resolve)
    sqs = deployment.client("sqs")

    queues = _resources(template, "AWS::SQS::Queue")
    # Dead-letter queues first: a redrive policy names its target's ARN.
    for logical_id, properties in sorted(queues, key=lambda queue: "RedrivePolicy" in queue[1]):
        attributes: dict[str, str] = {}
        if "VisibilityTimeout" in properties:
            attributes["VisibilityTimeout"] = str(properties["VisibilityTimeout"])
        if "RedrivePolicy" in properties:
            policy = resolve(properties["RedrivePolicy"])
            attributes["RedrivePolicy"] = json.dumps(policy)
            dlq_arn = policy["deadLetterTargetArn"]
            dlq_id = next(key for key, arn in deployment.queue_arns.items() if arn == dlq_arn)
            deployment.dead_letter_queues[dlq_id] = deployment.queue_urls[dlq_id]
        url = sqs.create_queue(QueueName=properties.get("QueueName", logical_id), Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        deployment.queue_urls[logical_id], deployment.queue_arns[logical_id] = url, arn
        resolve.refs[logical_id] = url
        resolve.attributes[(logical_id, "Arn")] = arn
        resolve.attributes[(logical_id, "QueueName")] = url.rsplit("/", 1)[-1]

    _provision_roles(template, deployment, resolve)
    _provision_table(template, deployment, resolve)
    _provision_parameters(template, deployment)
    _provision_rules(template, deployment, resolve)

    for logical_id, properties in _resources(template, "AWS::Lambda::Function"):
        variables = properties.get("Environment", {}).get("Variables", {})
        deployment.functions[logical_id] = Function(
            logical_id=logical_id,
            handler=properties["Handler"],
            environment={name: str(resolve(value)) for name, value in variables.items()},
            timeout=int(properties.get("Timeout", 3)),
        )
        resolve.refs[logical_id] = logical_id
    for _, properties in _resources(template, "AWS::Lambda::EventSourceMapping"):
        function_id = properties["FunctionName"]["Ref"]
        deployment.mappings.append(
            Mapping(
                function=deployment.functions[function_id],
                source_arn=resolve(properties["EventSourceArn"]),
                properties=resolve({key: value for key, value in properties.items() if key != "FunctionName"}),
            )
        )
        failure_arn = (
            deployment.mappings[-1].properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        )
        for queue_id, arn in deployment.queue_arns.items():
            if arn == failure_arn:
                deployment.dead_letter_queues[queue_id] = deployment.queue_urls[queue_id]
    if deployment.functions:  # a forwarder imports no findings; the account owner enables Security Hub
        deployment.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
    return deployment


def _active(template: dict[str, Any], resolve: _Resolver) -> dict[str, Any]:
    """The template without the resources whose ``Condition`` is false here (e.g. ``InHomeRegion``)."""
    resolve.conditions = template.get("Conditions", {})
    resources = {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if "Condition" not in resource or resolve.condition(resource["Condition"])
    }
    return {**template, "Resources": resources}


def _provision_roles(template: dict[str, Any], deployment: Deployment, resolve: _Resolver) -> None:
    iam = deployment.client("iam")
    for logical_id, properties in _resources(template, "AWS::IAM::Role"):
        name = properties.get("RoleName", logical_id)
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(resolve(properties["AssumeRolePolicyDocument"])),
            Description=properties.get("Description", ""),
        )["Role"]["Arn"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(resolve(policy["PolicyDocument"])),
            )
        resolve.refs[logical_id] = name
        resolve.attributes[(logical_id, "Arn")] = arn


def _provision_table(template: dict[str, Any], deployment: Deployment, resolve: _Resolver) -> None:
    tables = _resources(template, "AWS::DynamoDB::Table")
    if not tables and not _resources(template, "AWS::Lambda::EventSourceMapping"):
        return  # a forwarder: nothing reads a table
    if len(tables) != 1:
        raise TemplateError(f"expected one AWS::DynamoDB::Table, found {len(tables)}")
    logical_id, properties = tables[0]
    dynamodb = deployment.client("dynamodb")
    name = properties.get("TableName", logical_id)
    stream = properties.get("StreamSpecification")
    dynamodb.create_table(
        TableName=name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        **({"StreamSpecification": {"StreamEnabled": True, **stream}} if stream else {}),
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    description = dynamodb.describe_table(TableName=name)["Table"]
    deployment.table_name = name
    deployment.stream_arn = description.get("LatestStreamArn", "")
    resolve.refs[logical_id] = name
    resolve.attributes[(logical_id, "Arn")] = description["TableArn"]
    resolve.attributes[(logical_id, "StreamArn")] = deployment.stream_arn


def _provision_parameters(template: dict[str, Any], deployment: Deployment) -> None:
    ssm = deployment.client("ssm")
    for _, properties in _resources(template, "AWS::SSM::Parameter"):
        ssm.put_parameter(
            Name=properties["Name"],
            Value=properties["Value"],
            Type=properties.get("Type", "String"),
            Tier=properties.get("Tier", "Standard"),
        )
        deployment.parameter_name = properties["Name"]


def _provision_rules(template: dict[str, Any], deployment: Deployment, resolve: _Resolver) -> None:
    events = deployment.client("events")
    for logical_id, properties in _resources(template, "AWS::Events::EventBus"):
        arn = events.create_event_bus(Name=properties["Name"])["EventBusArn"]
        resolve.refs[logical_id] = properties["Name"]
        resolve.attributes[(logical_id, "Arn")] = arn
        resolve.attributes[(logical_id, "Name")] = properties["Name"]
    for logical_id, properties in _resources(template, "AWS::Events::Rule"):
        bus = resolve(properties.get("EventBusName", "default"))
        events.put_rule(
            Name=logical_id,
            EventBusName=bus,
            EventPattern=json.dumps(properties["EventPattern"]),
            State=properties.get("State", "ENABLED"),
        )
        targets = []
        for target in properties.get("Targets", []):
            resolved = resolve(target)
            entry = {"Id": resolved["Id"], "Arn": resolved["Arn"]}
            for optional in ("DeadLetterConfig", "RetryPolicy", "RoleArn"):
                if optional in resolved:
                    entry[optional] = resolved[optional]
            targets.append(entry)
            dlq = resolved.get("DeadLetterConfig", {}).get("Arn")
            for queue_id, arn in deployment.queue_arns.items():
                if arn == dlq:
                    deployment.dead_letter_queues[queue_id] = deployment.queue_urls[queue_id]
        events.put_targets(Rule=logical_id, EventBusName=bus, Targets=targets)
        deployment.rules.append(logical_id)
