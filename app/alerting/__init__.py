"""Alert rules and alert deliveries: where a workspace wants events such as
`operations.run.failed` sent (in-app, e-mail, webhook), and the record of every send.

Pages live with their areas (the rules page in app/workspaces, the deliveries page in
app/system); jobs in jobs/alerting.py.
"""
