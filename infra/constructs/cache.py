"""ElastiCache Serverless for the match cache and the per-vendor rate-limit buckets."""

from __future__ import annotations

from aws_cdk import Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from constructs import Construct

from infra.constructs.network import Network

# Serverless caches serve writes on 6379 and replica reads on 6380.
CACHE_PORTS = ec2.Port.tcp_range(6379, 6380)


class Cache(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, max_data_gb: int = 5) -> None:
        super().__init__(scope, construct_id)
        self.cache = elasticache.CfnServerlessCache(
            self,
            "Cache",
            serverless_cache_name="nutrimatch",
            description="nutrimatch match cache and rate limits",
            # Valkey speaks the Redis protocol redis-py uses, and its serverless floor is a tenth of Redis's.
            engine="valkey",
            major_engine_version="8",
            subnet_ids=network.data_subnet_ids,
            security_group_ids=[network.cache_sg.security_group_id],
            # Everything in it can be recomputed; the cap bounds the bill, not correctness.
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(unit="GB", maximum=max_data_gb)
            ),
        )
        network.cache_sg.add_ingress_rule(network.functions_sg, CACHE_PORTS, "Lambda functions to the cache")
        # Serverless caches only accept TLS connections, hence rediss://.
        self.url = Fn.join(
            "", ["rediss://", self.cache.attr_endpoint_address, ":", self.cache.attr_endpoint_port, "/0"]
        )
