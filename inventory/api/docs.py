"""The API's documentation pages, served whole by the app (a hospital network is often offline)."""
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView

# ReDoc's bundle hard-codes its vendor's logo on a CDN; the policy keeps the browser from asking
# for it (or for anything else outside the server), the template hides the empty footer link.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'"
)


class OfflineRedocView(SpectacularRedocView):
    template_name = "api/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response
