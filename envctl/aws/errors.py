"""The only place that inspects AWS error codes."""
from __future__ import annotations

from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError,
                                 ReadTimeoutError)

NOT_FOUND = {
    "NoSuchEntity", "ResourceNotFoundException", "NotFoundException", "NoSuchBucket", "NoSuchKey",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound", "DBInstanceNotFound",
    "DBInstanceNotFoundFault", "DBSubnetGroupNotFoundFault", "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound", "InvalidRouteTableID.NotFound", "InvalidInternetGatewayID.NotFound",
    "InvalidNatGatewayID.NotFound", "InvalidAllocationID.NotFound", "InvalidInstanceID.NotFound",
    "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException",
    "InvalidAssociationID.NotFound", "InvalidRoute.NotFound", "InvalidPermission.NotFound",
    "ResourceNotFound", "NoSuchBucketPolicy", "NoSuchLifecycleConfiguration", "ValidationError.NotFound",
    "InvalidParameterValue.NotFound", "ParameterNotFound", "NoSuchConfiguration",
    "NatGatewayNotFound",
    "NoSuchTagSet", "NoSuchPublicAccessBlockConfiguration",      # S3: a bucket without that configuration
    "ServerSideEncryptionConfigurationNotFoundError",
}
THROTTLE = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
            "SlowDown", "RequestThrottled", "ProvisionedThroughputExceededException", "PriorRequestNotComplete",
            "RequestThrottledException", "LimitExceededException"}
# Errors that clear with time: eventual consistency and dependencies still being removed.
EVENTUALLY = {"DependencyViolation", "InvalidGroup.InUse", "ResourceInUse", "ResourceInUseException",
              "InvalidDBSubnetGroupStateFault", "InvalidDBInstanceState", "IncorrectState",
              "InvalidParameterValueException", "OperationAborted", "ResourceConflictException",
              "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
              "InvalidRouteTableID.NotFound", "InvalidAllocationID.NotFound", "InvalidNatGatewayID.NotFound",
              "InvalidInternetGatewayID.NotFound", "InvalidInstanceID.NotFound", "InvalidParameterValue",
              "AuthFailure.ServiceLinkedRoleCreationNotPermitted", "InvalidIAMInstanceProfileName",
              "InvalidIPAddress.InUse"}     # an EIP whose deleted NAT gateway has not let go of it yet


def error_code(e: BaseException) -> str:
    if isinstance(e, ClientError):
        return e.response.get("Error", {}).get("Code", "") or ""
    return ""


def http_status(e: BaseException) -> int:
    if isinstance(e, ClientError):
        return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def message(e: BaseException) -> str:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code, msg = err.get("Code", ""), err.get("Message", "")
        return f"{code}: {msg}" if msg else code
    return str(e)


def is_not_found(e: BaseException) -> bool:
    code = error_code(e)
    return code in NOT_FOUND or code.endswith((".NotFound", "NotFoundException", "NotFoundFault")) or (
        isinstance(e, ClientError) and http_status(e) == 404 and code in ("404", "NoSuchBucket", ""))


def is_throttle(e: BaseException) -> bool:
    return error_code(e) in THROTTLE


def is_transient(e: BaseException) -> bool:
    """Worth retrying as is: throttling, 5xx, dropped connections."""
    if isinstance(e, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return True
    if isinstance(e, ClientError):
        return is_throttle(e) or http_status(e) >= 500
    return isinstance(e, BotoCoreError) and "connection" in str(e).lower()


def is_eventual(e: BaseException, codes: frozenset[str] | set[str] = frozenset(EVENTUALLY)) -> bool:
    return error_code(e) in codes


# Creating what is already there: a taken name or CIDR, an existing route, rule or association.
ALREADY_EXISTS = {"InvalidGroup.Duplicate", "InvalidSubnet.Conflict", "RouteAlreadyExists",
                  "InvalidPermission.Duplicate", "Resource.AlreadyAssociated",
                  "ResourceAlreadyExistsException",                   # CloudWatch Logs
                  "BucketAlreadyOwnedByYou", "BucketAlreadyExists",   # S3: ours / another account's
                  "EntityAlreadyExists", "InvalidLaunchTemplateName.AlreadyExistsException",
                  "AlreadyExists", "DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault",
                  "DBSubnetGroupAlreadyExists", "DBSubnetGroupAlreadyExistsFault"}  # IAM, EC2, ASG, RDS


def is_already_exists(e: BaseException) -> bool:
    return error_code(e) in ALREADY_EXISTS


def is_aws_error(e: BaseException) -> bool:
    """An error from AWS or from reaching it (not a bug in envctl)."""
    return isinstance(e, (ClientError, BotoCoreError))


# The credentials were good once and are not any more (temporary ones: SSO, assumed roles).
EXPIRED_CREDENTIALS = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}


def is_expired_credentials(e: BaseException) -> bool:
    return error_code(e) in EXPIRED_CREDENTIALS


def describe(e: BaseException) -> str:
    """One sentence for the user: the operation (which names the action refused, for an
    AccessDenied), the code and AWS's message."""
    if isinstance(e, ClientError):
        op = getattr(e, "operation_name", "") or ""
        text = message(e)
        if is_expired_credentials(e):
            text += " (the AWS credentials have expired; log in again: aws sso login, or new keys)"
        return f"{op}: {text}" if op else text
    if isinstance(e, (EndpointConnectionError, ConnectionClosedError)):
        return f"cannot reach the AWS endpoint ({e}); check --endpoint-url, the network, or --sandbox"
    return str(e)


# IAM is eventually consistent: a role or instance profile just created may be refused for a
# while by the services that use it (TF retries these for 2 minutes). Matched on the message,
# since the codes (InvalidParameterValue…) also mean genuinely invalid parameters.
IAM_PROPAGATION_MESSAGES = (
    "cannot be assumed by lambda",                    # Lambda CreateFunction: role not visible yet
    "iaminstanceprofile",                             # EC2: Value (…) for parameter iamInstanceProfile.name is invalid
    "invalid iam instance profile",                   # EC2 / autoscaling
    "not authorized to perform: sts:assumerole",      # a service assuming a brand-new role
)
# Codes in EVENTUALLY that also mean "your parameter is wrong": temporary only for IAM propagation.
PARAMETER_CODES = {"InvalidParameterValue", "InvalidParameterValueException"}


def is_iam_propagation(e: BaseException) -> bool:
    text = message(e).lower()
    return isinstance(e, ClientError) and any(m in text for m in IAM_PROPAGATION_MESSAGES)


def clears_with_time(e: BaseException) -> bool:
    """Eventual consistency or a dependency still going away: retrying later may succeed."""
    code = error_code(e)
    if code in PARAMETER_CODES:
        return is_iam_propagation(e)
    return code in EVENTUALLY or is_iam_propagation(e)


def is_ambiguous(e: BaseException) -> bool:
    """The call may have taken effect although it failed: the connection dropped after sending,
    or the service answered 5xx. A create must look before it tries again."""
    if isinstance(e, (ConnectionClosedError, ReadTimeoutError)):
        return True
    return isinstance(e, ClientError) and http_status(e) >= 500


# DynamoDB conditional writes (the environment lock): the condition did not hold. With
# ReturnValuesOnConditionCheckFailure=ALL_OLD, AWS returns the item that made it fail.
CONDITION_FAILED = "ConditionalCheckFailedException"


def is_condition_failed(e: BaseException) -> bool:
    return error_code(e) == CONDITION_FAILED


def condition_failed_item(e: BaseException) -> dict | None:
    """The item a failed DynamoDB condition found (when the call asked for it), else None."""
    if isinstance(e, ClientError) and is_condition_failed(e):
        return e.response.get("Item") or None
    return None


def is_in_use(e: BaseException) -> bool:
    """A DynamoDB table (or other resource) that exists and is being created or changed."""
    return error_code(e) in ("ResourceInUseException", "ResourceInUse")
