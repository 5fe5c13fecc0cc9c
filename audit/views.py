"""Views of the audit app: the public audit keys, and an export's download (for the admin and the API)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from audit.exports.manifest import manifest_path_for
from audit.exports.services import export_file_path
from audit.models import AuditExport
from audit.signing import ALGORITHM, public_keys


@require_safe
def audit_keys(request: HttpRequest) -> JsonResponse:
    """``/.well-known/audit-keys``: the public keys that verify audit seals (public, no login).

    ``{"algorithm": "Ed25519", "keys": [{"key_id", "public_key" (raw, base64url), "signing"}]}``;
    ``signing`` marks the key that signs new seals.
    """
    response = JsonResponse({"algorithm": ALGORITHM, "keys": public_keys()})
    response["Cache-Control"] = "public, max-age=300"
    return response


def export_download(export: AuditExport, *, manifest: bool = False) -> FileResponse:
    """The file of ``export`` (or its signed manifest) as an attachment; Http404 unless the export is
    ready and the file is on disk. Whether the caller may see the export is the caller's check."""
    path = export_file_path(export)
    if export.state != AuditExport.State.READY or not path.is_file():
        raise Http404("The export is not ready.")
    if manifest:
        path = manifest_path_for(path)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
