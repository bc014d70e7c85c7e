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
              "AuthFailure.ServiceLinkedRoleCreationNotPermitted", "InvalidIAMInstanceProfileName"}


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
