"""The AWS stack's CloudFormation templates, installed as ``telcopulse_deploy.infra``.

A package only so that pyproject.toml can install ``telcopulse.yaml`` and ``bootstrap.yaml``
with the deploy tooling, which finds them there wherever TelcoPulse is installed. The
scripts beside them (``audit.py``) run as scripts, from the Makefile.
"""
