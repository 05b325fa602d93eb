import Foundation
import Testing
@testable import GatewayAPI

@Suite("RequestOutcome")
struct RequestOutcomeTests {
    @Test func requestIDsStartWithTheirMillisecondAndEndRandom() {
        let moment = Date(timeIntervalSince1970: 1_764_900_000.123)
        let id = RequestOutcome.makeRequestID(at: moment)
        #expect(id.count == 36)
        #expect(id.hasPrefix("req_"))
        #expect(id.dropFirst(4).allSatisfy { "0123456789abcdef".contains($0) })
        let milliseconds = UInt64(moment.timeIntervalSince1970 * 1000)
        #expect(UInt64(id.dropFirst(4).prefix(12), radix: 16) == milliseconds)
        // Same millisecond, different ids: the 80 random bits tell them apart.
        let others = Set((0..<1_000).map { _ in RequestOutcome.makeRequestID(at: moment) })
        #expect(others.count == 1_000)
    }

    /// Audit rows are keyed by request id: ids in arrival order append to the index's last page.
    @Test func requestIDsSortByArrival() {
        let start = Date(timeIntervalSince1970: 1_764_900_000)
        let ids = (0..<500).map { RequestOutcome.makeRequestID(at: start.addingTimeInterval(Double($0) * 0.002)) }
        #expect(ids.sorted() == ids)
    }
}
