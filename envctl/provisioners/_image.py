"""Machine images for instances and launch templates: an AMI id, or `ssm:<parameter>`.

The spec's reference (not the AMI it resolved to) is what envctl compares: it is kept in the
`envctl:image` tag of the instance or launch template, and read back from there into the
props (it is not a tag the plan compares). So a newer AMI published behind a public SSM
parameter does not replace a running instance; changing the reference in the spec does.
"""
from __future__ import annotations

from collections.abc import Mapping

IMAGE_TAG = "envctl:image"
DEFAULT_ROOT_DEVICE = "/dev/xvda"


def resolve_image(ctx, image: str) -> str:
    """The AMI id: as given, or the value the SSM parameter holds now."""
    if image.startswith("ssm:"):
        return ctx.client("ssm").get_parameter(Name=image.removeprefix("ssm:"))["Parameter"]["Value"]
    return image


def root_device_name(ec2, ami: str) -> str:
    """The AMI's root device, which the encrypted root volume mapping must name."""
    from envctl.aws import errors

    try:
        images = ec2.describe_images(ImageIds=[ami])["Images"]
    except Exception as e:
        if not errors.is_not_found(e):
            raise
        images = []
    # An image we cannot describe fails at launch with AWS's own message; until then assume the usual name.
    return (images[0].get("RootDeviceName") if images else None) or DEFAULT_ROOT_DEVICE


def split_image_tag(tags: Mapping[str, str], fallback: str) -> tuple[str, dict[str, str]]:
    """(the image reference, the other tags): the reference is a prop, not a tag to compare."""
    rest = dict(tags)
    return rest.pop(IMAGE_TAG, None) or fallback, rest
