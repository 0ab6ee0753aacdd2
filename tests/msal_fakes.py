"""A fake Microsoft identity platform for MSAL tests: OpenID discovery and the token endpoint,
as a respx router to pass in as a transport (no real network)."""

from __future__ import annotations

import httpx
import respx

TENANT = "11111111-2222-3333-4444-555555555555"


def login_router(
    host: str = "login.microsoftonline.com",
    *,
    access_token: str | None = None,
    expires_in: int = 3600,
    tenant: str = TENANT,
) -> tuple[respx.Router, respx.Route]:
    """The router and its token route. Tokens are ``access_token`` if given, else ``AT-1``, ``AT-2``, ..."""
    base = f"https://{host}/{tenant}"
    router = respx.Router(assert_all_called=False)
    router.get(f"{base}/v2.0/.well-known/openid-configuration").mock(
        return_value=httpx.Response(
            200,
            json={
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"https://{host}/{tenant}/v2.0",
            },
        )
    )
    issued = {"n": 0}

    def issue(request: httpx.Request) -> httpx.Response:
        issued["n"] += 1
        token = access_token or f"AT-{issued['n']}"
        return httpx.Response(
            200, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
        )

    token_route = router.post(f"{base}/oauth2/v2.0/token").mock(side_effect=issue)
    return router, token_route
