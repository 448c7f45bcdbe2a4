import os

# Read by the jsii kernel (node) when it starts, i.e. at the first aws_cdk import during collection: node 20
# is past its end of life for jsii, which says so in a banner on every run.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
