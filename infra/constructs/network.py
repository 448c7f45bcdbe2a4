"""The VPC and the security groups every other construct attaches to."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class Network(Construct):
    """Two AZs: public subnets only for the NAT gateway, `app` subnets (with egress) for Lambdas and the
    RDS Proxy, isolated `data` subnets for Aurora and the cache.

    Security groups start with no ingress; each data construct opens its own port to `functions_sg`, so a
    rule exists only where a consumer exists.
    """

    def __init__(self, scope: Construct, construct_id: str, *, flow_log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            # One NAT gateway: Lambdas need egress (AWS APIs, vendors' JWKS and webhook endpoints), and a
            # second NAT only buys AZ-failure tolerance for egress at twice the hourly cost.
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        # Ingestion streams multi-GB objects out of S3: a gateway endpoint keeps that traffic free of NAT
        # data-processing charges.
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogGroup", retention=flow_log_retention, removal_policy=RemovalPolicy.DESTROY)
            ),
        )

        self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.functions_sg = self._security_group("FunctionsSg", "nutrimatch Lambda functions", allow_all_outbound=True)
        # The proxy reaches the cluster and Secrets Manager (for the database credentials) on its own.
        self.proxy_sg = self._security_group("ProxySg", "nutrimatch RDS Proxy", allow_all_outbound=True)
        # Data stores only answer; they never open connections.
        self.database_sg = self._security_group("DatabaseSg", "nutrimatch Aurora cluster", allow_all_outbound=False)
        self.cache_sg = self._security_group("CacheSg", "nutrimatch cache", allow_all_outbound=False)

    @property
    def app_subnet_ids(self) -> list[str]:
        return self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids

    @property
    def data_subnet_ids(self) -> list[str]:
        return self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids

    def _security_group(self, construct_id: str, description: str, *, allow_all_outbound: bool) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=allow_all_outbound
        )
