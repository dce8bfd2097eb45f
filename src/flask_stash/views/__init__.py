"""``@cache.cached`` on views: the decorator and keys (:mod:`.decorator`), serving a
request through the pipeline's hooks (:mod:`.serving`), storing the final response
(:mod:`.storing`, :mod:`.requestend`), the HTTP rules (:mod:`.http`), per-user keys
(:mod:`.privacy`), frozen responses (:mod:`.responses`) and the key audit (:mod:`.audit`,
:mod:`.auditrecord`).
"""
