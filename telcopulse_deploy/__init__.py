"""TelcoPulse deploy tooling (AWS deployment): ``telcopulse deploy`` and ``telcopulse destroy``.

Tooling beside the runtime, not part of it: it imports ``backend`` and ``glue_job``, and
neither imports it (the CLI loads it only for those two commands), so the dashboard image
and the Glue wheel go without it. Its templates are ``infra/*.yaml``, installed with it as
``telcopulse_deploy.infra``.
"""
