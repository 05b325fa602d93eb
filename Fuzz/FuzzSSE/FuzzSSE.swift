import FuzzSupport
import GatewayCore
import GatewayProviders

/// `SSEParser` on arbitrary bytes, fed whole and again in pieces. Input: byte 0 seeds the piece
/// sizes (1…byte+1 bytes; 0 = one byte at a time), the rest is the stream. Property: how the
/// bytes are split never changes the events or whether the line limit is hit (the relay sees
/// network reads of any size).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSE(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let chunking = input.byte()
    let stream = input.rest
    // A small line limit so the refusal path is reachable within libFuzzer's -max_len.
    let limit = 512

    var whole = SSEParser(maximumLineLength: limit)
    var wholeEvents: [SSEEvent] = []
    var wholeFailed = false
    do { wholeEvents = try whole.feed(stream) } catch { wholeFailed = true }
    if !wholeFailed, let last = whole.finish() { wholeEvents.append(last) }

    var pieces = SSEParser(maximumLineLength: limit)
    var pieceEvents: [SSEEvent] = []
    var piecesFailed = false
    var random = SplitMix64(seed: UInt64(chunking))
    var index = 0
    while index < stream.count, !piecesFailed {
        let end = min(stream.count, index + 1 + Int(random.next() % (UInt64(chunking) + 1)))
        do { pieceEvents += try pieces.feed(UnsafeBufferPointer(rebasing: stream[index..<end])) } catch { piecesFailed = true }
        index = end
    }
    if !piecesFailed, let last = pieces.finish() { pieceEvents.append(last) }

    fuzzRequire(wholeFailed == piecesFailed, "line limit hit in one feeding only (whole: \(wholeFailed))")
    if !wholeFailed { fuzzRequire(wholeEvents == pieceEvents, "events differ by chunking: \(wholeEvents) vs \(pieceEvents)") }
    return 0
}

/// Entry point under the name SwiftPM links as `main` (see `runFuzzer`).
@_cdecl("FuzzSSE_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzSSE)
}
