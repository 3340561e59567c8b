"""Training jobs, from the web's launch to the work horse that trains.

- ``launching``: validate a config, create the queued run, enqueue its job on commit; cancel; requeue orphans.
- ``queues``: the job queue's Redis (``REDIS_URL`` or the embedded server) and which queue a config goes to.
- ``tasks``: the RQ jobs themselves, thin functions that take ids, and RQ's failure and stop callbacks.
- ``worker``: the RQ worker class (frameworks imported before forking, machine snapshots, a dead horse's run).
- ``horse``: one job's work inside RQ's forked work horse: claim, train, record, index.
- ``follow_on``: a sweep's next trial trained by the horse that trained the last one.
"""
