"""The CDK app: one stack, NutrimatchStack, composed from the constructs in infra/constructs.

`cdk synth` runs `.venv/bin/python infra/app.py` (cdk.json). Context:
- `deletionProtection` (default true): false only for disposable environments;
- `aws:cdk:bundling-stacks` = [] skips the pip bundling of the dependency layer (tests do this).
"""

# ruff: noqa: E402 -- sys.path has to be corrected before anything imports aws_cdk (see below).
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts infra/ first on sys.path, and infra/constructs would then shadow the
# `constructs` library that aws_cdk imports. Everything is imported from the project root instead.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != PROJECT_ROOT / "infra"]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Duration, Environment, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.constructs.api import PHI_FUNCTIONS, Api, ApiLimits
from infra.constructs.cache import Cache
from infra.constructs.database import Database
from infra.constructs.ingest_pipeline import STARTER_FUNCTION, IngestPipeline
from infra.constructs.lambdas import LambdaFactory
from infra.constructs.layers import Layers
from infra.constructs.network import Network
from infra.constructs.observability import Observability
from infra.constructs.queues import Queues
from infra.constructs.security import Security
from infra.constructs.storage import Storage
from nutrimatch.ingest.pipeline import STEP_HANDLERS
from nutrimatch.routes import QUEUE_CONSUMERS, ROUTES, SCHEDULED

STACK_NAME = "NutrimatchStack"
ENVIRONMENT = Environment(account="123456789012", region="us-east-1")
DATABASE_NAME = "nutrimatch"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# The queue consumers (ingest starter, webhook dispatcher) run for at most this long.
QUEUE_CONSUMER_TIMEOUT = Duration.minutes(1)
# Settings.replica_max_lag_seconds: beyond it the core sends reads to the writer.
REPLICA_LAG_ALARM_MS = 5_000
API_LIMITS = ApiLimits(
    stage_rate=1_000, stage_burst=2_000, vendor_rate=200, vendor_burst=400, vendor_daily_quota=1_000_000
)


class NutrimatchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deletion_protection: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        network = Network(self, "Network", flow_log_retention=LOG_RETENTION)
        security = Security(self, "Security")
        database = Database(
            self,
            "Database",
            network=network,
            database_name=DATABASE_NAME,
            deletion_protection=deletion_protection,
            log_retention=LOG_RETENTION,
        )
        cache = Cache(self, "Cache", network=network)
        queues = Queues(self, "Queues", consumer_timeout=QUEUE_CONSUMER_TIMEOUT)
        storage = Storage(self, "Storage", ingest_queue=queues.ingest_events.queue)
        layers = Layers(self, "Layers")

        # Upper-case names of nutrimatch.settings.Settings fields. AWS_ENDPOINT_URL stays unset: in AWS the
        # SDK's own endpoints are the right ones.
        settings_environment: Mapping[str, str] = {
            "DATABASE_HOST": database.writer_host,
            "DATABASE_READER_HOST": database.reader_host,
            "DATABASE_SECRET_ARN": database.app_secret.secret_arn,
            "DATABASE_NAME": DATABASE_NAME,
            "REDIS_URL": cache.url,
            "UPLOAD_BUCKET": storage.upload_bucket.bucket_name,
            **{setting.upper(): queue.queue.queue_name for setting, queue in queues.by_setting.items()},
            "KMS_KEY_ALIAS": security.phi_key_alias.alias_name,
            "JWT_SECRET_NAME": security.jwt_secret_name,
        }
        factory = LambdaFactory(
            self,
            "Functions",
            network=network,
            layers=layers,
            environment=settings_environment,
            log_retention=LOG_RETENTION,
        )
        api = Api(
            self,
            "Api",
            routes=ROUTES,
            factory=factory,
            limits=API_LIMITS,
            log_retention=LOG_RETENTION,
        )

        # The route table says which function serves a route, not what it touches, so every API function gets
        # what the core's adapters may use; the PHI key only those that handle PHI.
        for function in api.functions.values():
            database.grant_connect(function)
            storage.grant_read_write(function)
            queues.webhooks.queue.grant_send_messages(function)
            queues.webhooks.dlq.grant_consume_messages(function)  # redrive of failed deliveries, by API
        for function in api.functions_named(PHI_FUNCTIONS).values():
            security.grant_phi_encryption(function)
        if api.authorizer_function is not None:
            # JWTs are checked against the signing secret; API keys are looked up (hashed) in the database.
            security.jwt_secret.grant_read(api.authorizer_function)
            database.grant_connect(api.authorizer_function)

        # nutrimatch.routes.SCHEDULED: the cleanups that run on a timer.
        scheduled = {}
        for name, schedule in SCHEDULED.items():
            function = scheduled[name] = factory.create(name, handler=schedule.handler, timeout=Duration.minutes(5))
            database.grant_connect(function)
            rule_id = "".join(part.title() for part in name.split("-")) + "Schedule"
            events.Rule(self, rule_id, schedule=events.Schedule.rate(Duration.hours(schedule.every_hours)),
                        targets=[targets.LambdaFunction(function)])
        storage.grant_read_write(scheduled["tus-expiry"])  # aborts multipart uploads, deletes scratch tails

        # Steps read the uploaded file and write staging tables, errors.csv and matching snapshots.
        ingest = IngestPipeline(
            self, "Ingest", factory=factory, step_handlers=STEP_HANDLERS, log_retention=LOG_RETENTION
        )
        for function in ingest.step_functions.values():
            database.grant_connect(function)
            storage.grant_read_write(function)

        # One function per name in nutrimatch.routes.QUEUE_CONSUMERS, fed by each queue that names it.
        consumers = {
            name: factory.create(name, timeout=QUEUE_CONSUMER_TIMEOUT) for name in sorted(set(QUEUE_CONSUMERS.values()))
        }
        for setting, name in QUEUE_CONSUMERS.items():
            queues.by_setting[setting].add_consumer(consumers[name])
        for function in consumers.values():
            database.grant_connect(function)
        if STARTER_FUNCTION in consumers:
            ingest.allow_start(consumers[STARTER_FUNCTION])

        Observability(
            self,
            "Observability",
            rest_api=api.rest_api,
            functions={
                **api.all_functions,
                **ingest.step_functions,
                **consumers,
                **scheduled,
            },
            cluster=database.cluster,
            queues=queues.all,
            ingest_state_machine=ingest.state_machine,
            replica_lag_alarm_ms=REPLICA_LAG_ALARM_MS,
        )


def project_context() -> dict[str, Any]:
    """cdk.json's context (feature flags) and cdk.context.json (the availability zones, so nothing is looked
    up): what the cdk CLI would pass, so that running this file directly or from tests synthesizes the same."""
    cdk_json = json.loads((PROJECT_ROOT / "cdk.json").read_text())
    cached = json.loads((PROJECT_ROOT / "cdk.context.json").read_text())
    return {**cdk_json.get("context", {}), **cached}


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, NutrimatchStack]:
    """The app and its stack; `context` overrides the project's. Context from the cdk CLI overrides both."""
    app = App(context={**project_context(), **(context or {})}, outdir=outdir)
    # -c deletionProtection=false arrives as a string, cdk.json's false as a boolean.
    deletion_protection = str(app.node.try_get_context("deletionProtection")).lower() != "false"
    stack = NutrimatchStack(app, STACK_NAME, env=ENVIRONMENT, deletion_protection=deletion_protection)
    # Acknowledged findings are also written into the template's Metadata, so each reason ships with the
    # resource it excuses.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))
    return app, stack


if __name__ == "__main__":
    # The cdk CLI names the output directory; run directly, write where the CLI would.
    build_app(outdir=os.environ.get("CDK_OUTDIR", str(PROJECT_ROOT / "cdk.out")))[0].synth()
