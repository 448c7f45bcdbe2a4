"""The CDK app that deploys nutrimatch to AWS (`infra/app.py`), built from one construct per concern."""
