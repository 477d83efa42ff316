"""Images a patient or a doctor attaches to a consultation message: what is accepted, and what
is taken out of it before it is stored."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from ..errors import AttachmentRejected

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
# Image types we accept, recognised by their first bytes (never by the name or the browser's
# claimed content type).
_IMAGE_SIGNATURES = [(b"\xff\xd8\xff", "image/jpeg", "jpg"),
                     (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
                     (b"GIF87a", "image/gif", "gif"), (b"GIF89a", "image/gif", "gif")]


def attachment_check(upload: UploadedFile) -> tuple[str, str]:
    """The image's content type and file extension, from its size and first bytes; anything
    else is refused (AttachmentRejected). Cheap: call it before taking any lock."""
    if upload.size > MAX_ATTACHMENT_BYTES:
        raise AttachmentRejected(_("Images can be at most %(mb)d MB.") % {
            "mb": MAX_ATTACHMENT_BYTES // (1024 * 1024)})
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for magic, content_type, ext in _IMAGE_SIGNATURES:
        if head.startswith(magic):
            return content_type, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    raise AttachmentRejected(_("Only JPEG, PNG, GIF or WebP images can be attached."))


def attachment_content(upload: UploadedFile, *, content_type: str, ext: str) -> ContentFile:
    """The file to store for a checked upload (see `attachment_check`): a JPEG loses its
    metadata; the name is ours, never the uploader's."""
    upload.seek(0)
    content = upload.read()
    if content_type == "image/jpeg":
        content = strip_jpeg_metadata(content)
    return ContentFile(content, name=f"image.{ext}")


def strip_jpeg_metadata(data: bytes) -> bytes:
    """A JPEG without its EXIF / XMP (APP1) and comment segments: phone photos carry the
    place they were taken and the device, which a doctor does not need. Anything that does
    not parse as a JPEG header is returned unchanged."""
    if not data.startswith(b"\xff\xd8"):
        return data
    out, i = bytearray(b"\xff\xd8"), 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return data
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the compressed image follows, kept as is
            return bytes(out + data[i:])
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > len(data):
            return data
        if marker not in (0xE1, 0xFE):
            out += data[i:i + 2 + length]
        i += 2 + length
    return data
