"""Keys and application secrets: the PHI envelope key in KMS and the JWT signing settings."""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

PHI_KEY_ALIAS = "alias/nutrimatch-phi"
JWT_SECRET_NAME = "nutrimatch/jwt"


class Security(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.phi_key = kms.Key(
            self,
            "PhiKey",
            description="nutrimatch: per-vendor data keys for field-level encryption of health profiles",
            enable_key_rotation=True,
            # Destroying this key makes every encrypted health profile unreadable.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.phi_key_alias = self.phi_key.add_alias(PHI_KEY_ALIAS)

        # Same JSON shape as the local stand-in writes (nutrimatch.local.aws_stand_in).
        self.jwt_secret_name = JWT_SECRET_NAME
        self.jwt_secret = secretsmanager.Secret(
            self,
            "JwtSecret",
            secret_name=self.jwt_secret_name,
            description="nutrimatch: HS256 signing secret for first-party JWTs",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"algorithm": "HS256"}',
                generate_string_key="hs256_secret",
                password_length=64,
                exclude_punctuation=True,
            ),
        )
        Validations.of(self.jwt_secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Rotating the HS256 signing secret invalidates every issued token at once, so it is "
                "rotated by an operator together with the token issuers, not on a schedule.",
            )
        )

    def grant_phi_encryption(self, function: lambda_.Function) -> None:
        """Envelope encryption of PHI (nutrimatch.crypto): a new data key per vendor and key version
        (GenerateDataKey), and unwrapping it again (Decrypt). Nothing else: the data never goes to KMS itself,
        and KMS rotates the key material without re-encrypting anything."""
        self.phi_key.grant_decrypt(function)
        self.phi_key.grant(function, "kms:GenerateDataKey")
