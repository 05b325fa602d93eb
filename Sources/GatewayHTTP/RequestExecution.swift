/// Where the transport runs a request's task (the FastCGI worker's `RequestThread`), for work
/// the request starts outside structured concurrency: an unstructured task does not inherit its
/// parent's executor, so one that must stay on the request's thread (a provider body read, run
/// apart so a deadline can cancel it alone) asks for it here. nil: Swift's default executor.
public enum RequestExecution {
    @TaskLocal public static var executor: (any TaskExecutor)?
}
