"""Every setting Causeline reads, in one object (documented in docs/configuration.md).

Values come from environment variables prefixed CAUSELINE_ (plus DATABASE_URL);
nothing else in the code reads the environment, so tests build a Settings with
explicit values and pass it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAUSELINE_", extra="ignore")

    # Storage
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CAUSELINE_DATABASE_URL"),
        description="postgresql:// URL; unset means an embedded PostgreSQL under `home`.",
    )
    home: Path = Field(default=Path(".causeline"), description="Data directory of the embedded PostgreSQL.")
    db_pool_size: int = Field(default=5, ge=1, description="Connections for API and UI queries.")

    # Network
    host: str = Field(default="127.0.0.1", description="Interface the UI/API and OTLP ports bind to.")
    port: int = Field(default=8000, ge=0, le=65535, description="UI and JSON API port (also accepts OTLP).")
    otlp_port: int = Field(default=4318, ge=0, le=65535, description="OTLP/HTTP port; 0 disables the separate listener.")
    grpc_port: int = Field(default=4317, ge=0, le=65535, description="OTLP/gRPC port; 0 disables the gRPC listener.")
    grpc_host: str | None = Field(default=None, description="Interface the OTLP/gRPC port binds to; unset means `host`.")

    # Ingest
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Request body cap, before and after decompression (413 beyond).")
    ingest_processes: int | None = Field(
        default=None, ge=0, le=64,
        description="Worker processes that decode, normalize, price and encode request bodies; unset or 0: one per CPU.",
    )
    writer_connections: int = Field(
        default=2, ge=1, le=16,
        description="Writer threads, each with its own PostgreSQL connection; while one transaction's commit is "
                    "flushed, the next is written.",
    )
    queue_max_spans: int = Field(default=200_000, ge=1, description="Spans accepted but not yet committed; beyond it ingest answers 503.")
    max_inflight_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024 * 1024,
        description="Memory the requests in flight may hold: a body's decoding cost (17x protobuf, 24x JSON), charged "
                    "before it is read for its declared length, then for the body as received; then its encoded rows "
                    "(and the body over gRPC) until commit; beyond it 503; a body whose decoding cost alone exceeds "
                    "it gets 413.",
    )
    batch_max_spans: int = Field(default=20_000, ge=1, description="Most spans the writer commits in one transaction.")
    batch_max_wait_ms: int = Field(default=20, ge=0, description="How long a writer waits for requests still being decoded to join its batch (it waits only while some are).")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 503 when the queue is full.")
    max_attribute_value_chars: int = Field(default=64 * 1024, ge=256, description="String values (attributes, names, messages) longer than this many characters are truncated with a marker.")
    max_attributes_per_span: int = Field(default=512, ge=16, description="Attributes beyond this are dropped and counted on the span.")
    max_events_per_span: int = Field(default=256, ge=1, description="Events beyond this are dropped and counted on the span.")
    max_links_per_span: int = Field(default=128, ge=1, description="Links beyond this are dropped and counted on the span.")

    # Auth
    auth_disabled: bool = Field(default=False, description="Serve the API and UI without keys or login (the default project). Never in production.")
    session_days: int = Field(default=14, ge=1, description="How long a UI login lasts.")
    secure_cookies: bool = Field(default=False, description="Mark the session cookie Secure (set behind HTTPS).")
    max_connections: int = Field(
        default=1000, ge=10,
        description="Connections one listener serves at once; beyond it new requests are answered 503 at once "
                    "(slow or idle clients cannot exhaust the server).",
    )
    max_connections_per_address: int = Field(
        default=200, ge=1,
        description="Connections one client address may hold open on one HTTP listener; beyond it a new "
                    "connection is answered 503 and closed. Trusted proxies are exempt.",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, le=300,
        description="A request's line and headers must arrive within this many seconds of the connection opening "
                    "(or of the request's first byte on a kept-alive connection); otherwise the connection is "
                    "closed, so a client sending headers slowly cannot hold it.",
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="A request body must arrive whole within this many seconds of its headers: OTLP exports are "
                    "answered 408 and the connection closed; on other routes the connection is closed.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are "
                    "believed (client address in the audit trail and the login throttle); empty: none, the peer "
                    "address is the client's.",
    )
    docs_public: bool = Field(
        default=False,
        description="Serve the API reference (/docs, /openapi.json) without credentials; by default only to a "
                    "logged-in user or a key with the `read` scope.",
    )

    # Single sign-on (OpenID Connect; docs/operations.md, "Single sign-on")
    oidc_issuer: str = Field(default="", description="Issuer URL of the OpenID Connect provider; empty: no single sign-on.")
    oidc_client_id: str = Field(default="", description="Client id registered at the provider.")
    oidc_client_secret: SecretStr | None = Field(default=None, description="Client secret; unset for a public client (PKCE only).")
    oidc_name: str = Field(default="", description="Provider name on the login button; empty: the issuer's host.")
    oidc_scopes: str = Field(default="openid email profile", description="Scopes requested (add `groups` where the provider needs it for the role claim).")
    oidc_redirect_url: str = Field(default="", description="Callback URL registered at the provider; empty: this server's own URL + /auth/oidc/callback.")
    oidc_role_claim: str = Field(default="causeline_role", description="ID-token claim holding the role or groups (e.g. `groups`; a dotted path reaches nested claims).")
    oidc_role_map: str = Field(default="", description="Comma-separated claim value=role pairs, first match wins; empty: values that are role names count as themselves.")
    oidc_default_role: str = Field(default="viewer", description="Role of a user whose claim maps to none; `none` refuses them.")
    oidc_project: str = Field(default="", description="Project single-sign-on users join; empty: `init_project`.")

    @field_validator("oidc_role_map")
    @classmethod
    def _role_map(cls, value: str) -> str:
        from core.oidc_claims import parse_role_map

        parse_role_map(value)  # raises ValueError naming the bad entry: the server refuses to start
        return value

    @field_validator("secrets_key")
    @classmethod
    def _secrets_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here so a bad key stops the server at start, not at the first alert it sends.
        import base64
        import binascii

        if value is None:
            return None
        keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
        if not keys:
            raise ValueError("secrets_key is empty: unset it, or give one or more Fernet keys")
        for n, key in enumerate(keys, 1):
            try:
                raw = base64.urlsafe_b64decode(key.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(f"secrets_key: key {n} is not a Fernet key (32 url-safe base64 bytes; make one with "
                                 "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)")
        return value

    @field_validator("oidc_default_role")
    @classmethod
    def _default_role(cls, value: str) -> str:
        from core.oidc_claims import parse_default_role

        parse_default_role(value)
        return value

    # First-run bootstrap
    init_project: str = Field(default="default", description="Slug of the project created on first run.")
    init_api_key: str | None = Field(default=None, description="Ingest+read key created on first run; generated and printed once when unset.")
    init_admin_email: str = Field(default="admin@localhost", description="Login created on first run.")
    init_admin_password: str | None = Field(default=None, description="Its password; generated and printed once when unset.")

    # Forensics
    attribution_delay_s: float = Field(
        default=5.0, ge=0,
        description="Seconds a trace must be quiet (no new spans) before the background attributor materializes its failures for /api/failures.",
    )

    attribution_budget_s: float = Field(
        default=10.0, gt=0,
        description="Seconds the background attributor may spend on one trace (and again on its bounded fallback: this "
                    "trace only, its first attribution_max_spans spans) before marking it partially attributed.",
    )
    attribution_max_spans: int = Field(
        default=20_000, ge=1,
        description="A trace with more spans goes straight to the bounded attribution (this trace only, its first N "
                    "spans), marked partially attributed.",
    )

    # Evaluation (docs/evaluation.md)
    evaluators_enabled: bool = Field(
        default=True,
        description="Run the built-in evaluators (non_empty, complete, no_refusal, json_valid) and the projects' "
                    "rules on new model calls in the background; OpenTelemetry evaluation events on spans become "
                    "scores either way.",
    )
    evaluation_delay_s: float = Field(
        default=5.0, ge=0,
        description="Seconds a trace must be quiet (no new spans) before the background evaluator scores it.",
    )
    finetune_max_calls: int = Field(
        default=1_000_000, ge=1,
        description="Most model calls one fine-tuning export or preview reads (de-duplication keeps a digest, about 100 bytes, per "
                    "example in memory).",
    )

    # Replay of a captured model call through the model endpoint below (docs/routing.md).
    replay_models: str = Field(
        default="",
        description="Comma-separated models a captured model call may be replayed against (span detail, needs "
                    "judge_base_url and content access); empty: no replay.")

    # Model endpoint (docs/evaluation.md): an OpenAI-compatible chat-completions API the operator runs or
    # trusts. Nothing is ever sent to a model unless `judge_base_url` is set.
    judge_base_url: str = Field(
        default="",
        description="Base URL of an OpenAI-compatible API (e.g. https://llm.internal/v1) used by the LLM-as-judge "
                    "evaluators, judge-assisted attribution and replay; empty: no model is ever called.",
    )
    judge_api_key: SecretStr | None = Field(default=None, description="Bearer key for that API; unset: no Authorization header.")
    judge_model: str = Field(default="", description="Model the judge asks (e.g. gpt-4o-mini); required with judge_base_url.")
    judge_provider: str = Field(
        default="", description="Provider of the judge model for pricing its calls (e.g. openai); empty: genai-prices matches the model name alone.")
    judge_timeout_s: float = Field(default=60.0, gt=0, le=600, description="Timeout of one call to the model endpoint.")
    judge_daily_tokens: int = Field(
        default=500_000, ge=0,
        description="Tokens (prompt + completion) the judge may use per project per UTC day, evaluations and "
                    "attributions together; a call that might exceed it is not sent. Replays are not counted.")
    judge_daily_usd: float = Field(
        default=2.0, ge=0,
        description="USD the judge may spend per project per UTC day (priced calls); once reached, no call is sent until the next day.")
    judge_attribution: bool = Field(
        default=False,
        description="Ask the judge which agent and step caused failed runs that no error span explains (judge-assisted "
                    "attribution, docs/forensics.md); needs judge_base_url. Off: no run is ever sent for attribution.")
    judge_sample_rate: float = Field(
        default=0.1, ge=0, le=1,
        description="Share of new runs the LLM-as-judge evaluators judge (chosen by a hash of the trace id); 0: none.")
    judge_evaluators: str = Field(
        default="faithfulness,relevance",
        description="Built-in LLM-as-judge evaluators to run on sampled runs (comma list of faithfulness, relevance, "
                    "consistency; empty: only the projects' llm_rubric rules).")

    @field_validator("judge_evaluators")
    @classmethod
    def _known_judges(cls, value: str) -> str:
        from core.judge_evaluators import enabled_judges

        enabled_judges(value)  # ValueError names an unknown judge
        return value

    # Retention (docs/scaling.md, docs/compliance.md); a project's own values are set in Settings or `causeline retention`
    retention_days: int = Field(
        default=180, ge=1, le=36_600,
        description="Days spans (and their traces, lineage, root causes, log content) are kept, for projects without "
                    "their own value; 180 is the six-month floor of EU AI Act Articles 19 and 26(6).",
    )
    rollup_retention_days: int = Field(
        default=730, ge=1, le=36_600,
        description="Days the hourly cost and health rollups are kept, for projects without their own value (never "
                    "less than the span retention), so year-over-year cost views survive.",
    )
    retention_interval_s: float = Field(
        default=3600.0, ge=1,
        description="Seconds between rounds of the maintenance job (partitions created ahead, retention enforced).",
    )
    retention_batch_rows: int = Field(
        default=1000, ge=1, le=100_000,
        description="Most rows one retention delete removes in one transaction (where no whole partition can be dropped).",
    )

    # Reports
    report_signing_key: str | None = Field(
        default=None,
        description="Path to a PEM Ed25519 private key; when set, every report's seal (FILE.sig.json) is signed "
                    "with it, so a third party can check authenticity offline with the public key.",
    )

    # Reads
    max_trace_spans: int = Field(
        default=5000, ge=1,
        description="Most spans one trace page or GET /api/traces/{id} returns (earliest first); beyond it the "
                    "response says `truncated`.",
    )

    # Alerts (docs/alerts.md)
    public_base_url: str = Field(default="", description="This server's URL as people reach it (e.g. https://causeline.example.com); links in alert notifications are built from it; empty: notifications carry trace ids without links.")
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) encrypting alert channels' secrets in the database (webhook keys, Slack URLs, "
                    "PagerDuty routing keys), comma-separated: the first encrypts, all decrypt (rotation); "
                    "unset: a key generated on first use in `home`/secrets.key (mode 0600). Set it when several "
                    "servers share one database.",
    )
    alerts_interval_s: float = Field(default=30.0, ge=0, description="Seconds between alert evaluation cycles (one process evaluates at a time); 0 disables the evaluator in this process.")
    alert_send_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Timeout of one alert delivery (HTTP request or SMTP session).")
    alerts_allow_private_targets: bool = Field(default=False, description="Let webhook, Slack and PagerDuty channels deliver to loopback, private and link-local addresses (an internal chat server, say); off, such deliveries are refused, so a channel cannot be pointed at internal services or cloud metadata.")
    smtp_host: str = Field(default="", description="SMTP server for e-mail alert channels; empty: e-mail channels fail their deliveries.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_from: str = Field(default="causeline@localhost", description="Sender address of alert e-mails.")
    smtp_username: str = Field(default="", description="SMTP login; empty: no authentication.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS (refuse to send if the server does not offer it).")

    # Demo
    demo: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Load the demo agent's traces into an empty project at start: auto = only with the embedded database.",
    )
    metrics_public: bool = Field(default=False, description="Serve /metrics without a key (for a scraper on a private network); otherwise it needs a key with the `metrics` scope.")

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()
