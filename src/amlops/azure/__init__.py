"""The Azure ML target: submit pipelines, data assets, components, batch deployment, promotion and schedules.

Every module here talks to Azure through `azure-ai-ml` (SDK v2) with an `MLClient` built by
`client.ml_client`;
nothing hand-writes REST. `azure.ai.ml` costs 1-2.5 s to import, so it is imported inside functions only.
"""
