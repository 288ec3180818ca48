// A test imports this product alone and gets the core with it: `ManualClock`, the in-memory backend,
// the client and the worker, beside the replayer and the conformance suite. `ManualClock` itself stays
// in the core, because backends take any `DurableClock` and must not depend on a testing product.
@_exported import DurableTask
