"""The emulator does moto's per-request bookkeeping once (envctl/sandbox/moto_costs.py), and
answers exactly as before: the same errors, working KMS keys."""
import inspect
import os

import moto.backends
import moto.core.utils
import moto.core.responses
import pytest
from botocore.exceptions import ClientError

from envctl.sandbox import moto_costs


def test_calls_list_no_directory_and_inspect_no_class(aws, monkeypatch):
    ec2, sqs, iam = aws.client("ec2"), aws.client("sqs"), aws.client("iam")

    def calls():
        ec2.describe_vpcs()
        sqs.list_queues()
        with pytest.raises(ClientError):
            iam.get_role(RoleName="missing")

    calls()                                     # first calls may load models from disk
    seen = {"listdir": 0, "getmembers": 0}

    def counted(name, real):
        def wrapper(*args, **kwargs):
            seen[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(os, "listdir", counted("listdir", os.listdir))
    monkeypatch.setattr(inspect, "getmembers", counted("getmembers", inspect.getmembers))
    for _ in range(3):
        calls()
    assert seen == {"listdir": 0, "getmembers": 0}


def test_the_kept_module_list_is_moto_s_package_directory():
    root = os.path.dirname(moto.__file__)
    on_disk = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("__"))
    assert list(moto.backends.list_of_moto_modules()) == on_disk
    assert "ec2" in on_disk and "s3" in on_disk


def test_errors_keep_their_services_codes(aws):
    with pytest.raises(ClientError) as e:
        aws.client("iam").get_role(RoleName="missing")
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"
    with pytest.raises(ClientError) as e:
        aws.client("ec2").describe_vpcs(VpcIds=["vpc-00000000000000000"])
    assert e.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as e:
        aws.client("dynamodb").describe_table(TableName="missing")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        aws.client("sqs").get_queue_url(QueueName="missing")
    assert e.value.response["Error"]["Code"] in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


def test_service_names_come_from_one_listing_of_botocore_s_services(monkeypatch):
    from botocore.session import Session

    name_of = moto.core.utils.service_name_from_moto_package_name
    assert name_of("cognitoidp") == "cognito-idp"      # moto drops the hyphen; errors need the real name
    listings = []
    real = Session.get_available_services
    monkeypatch.setattr(Session, "get_available_services", lambda self: listings.append(1) or real(self))
    assert [name_of(p) for p in ("ec2", "resourcegroupstaggingapi", "notapackage1", "notapackage2")] == \
        ["ec2", "resourcegroupstaggingapi", "notapackage1", "notapackage2"]
    assert listings == []                       # moto's own lists every service on disk once per package


def test_kms_keys_of_one_size_share_one_key_pair_and_each_signs_and_verifies(aws):
    kms = aws.client("kms")
    keys = [kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"] for _ in range(2)]
    public = [kms.get_public_key(KeyId=k)["PublicKey"] for k in keys]
    assert public[0] == public[1]               # generated once: about 100 ms of held interpreter each
    for key in keys:
        signature = kms.sign(KeyId=key, Message=b"envctl", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
        assert kms.verify(KeyId=key, Message=b"envctl", Signature=signature,
                          SigningAlgorithm="RSASSA_PSS_SHA_256")["SignatureValid"]
    other = kms.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert kms.get_public_key(KeyId=other)["PublicKey"] != public[0]


def test_applying_twice_patches_once():
    cached = moto.core.responses.method_names_from_class
    moto_costs.apply()
    assert moto.core.responses.method_names_from_class is cached
    assert not hasattr(cached.__wrapped__, "cache_info")    # moto's own function, cached once
