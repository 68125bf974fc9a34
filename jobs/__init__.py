"""The RQ side: queues, enqueue helpers, the worker entry point and job functions per area.

Job functions take ids, open their own application context (`with_app_context`), call the
area's service and are safe to run twice.
"""
