# Realsmart Entra Sync: one image for the console, beat and the workers of the fleet.
#   docker build -t entra-sync .
#   docker run --rm entra-sync --help
# Two stages: wheels are built in the first, only they reach the second (no compiler, no cache,
# no source tree). It runs as an unprivileged user (uid 10001) and needs no writable root file
# system: give it a writable /tmp (beat keeps its small schedule file there).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY entra_sync ./entra_sync
COPY reconciler ./reconciler
COPY providers ./providers
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[fleet]"

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1
RUN useradd --system --uid 10001 --user-group --home-dir /home/entra --create-home --shell /usr/sbin/nologin entra
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels realsmart-entra-sync[fleet] && rm -rf /wheels
USER 10001:10001
WORKDIR /home/entra
EXPOSE 8080
ENTRYPOINT ["entra-sync"]
CMD ["--help"]
