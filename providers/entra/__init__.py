"""The Microsoft Entra provider: authentication, the Graph client and the directory over Graph.

    errors       the exception tree (GraphError and subclasses, ResponseLostError, AuthError)
    client       GraphClient: retries, throttling, paging, typed errors (over an injected httpx.Client)
    batch        the $batch executor (BatchRequest, BatchResult)
    retry        the one retry policy: per-request limits, run-wide budget, circuit breaker
    urls         the loopback rule for Graph URLs (https, or http to loopback only)
    create       idempotent creates (never resent before a lag-waiting lookup)
    recent       the fsynced journal of recent creates per tenant + app
    auth         MSAL token providers (secret, certificate, federated, managed identity, static token)
    clouds       national clouds (authority host + Graph endpoint)
    connect      ConnectionSettings.from_env and open_graph
    permissions  least-privilege roles and the token role check
    marker, read, write, directory   the Directory port over Graph (ownership marker, reads, writes)

Nothing is imported here, so ``import providers.entra.errors`` stays light.
"""
