#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import FastCGI

/// Which CPU a worker's threads take, and that binding one thread leaves the others alone.
@Suite("CPUAffinity")
struct CPUAffinityTests {
    @Test func workersTakeTheAllowedCPUsInTurn() {
        let allowed = [2, 5, 7]
        let cpus = (0..<5).map { CPUAffinity.cpu(forWorkerSlot: $0, policy: .auto, requestThreads: 1, allowed: allowed) }
        #expect(cpus == [2, 5, 7, 2, 5])
    }

    @Test func nothingIsBoundWithoutAChoiceOrAgainstThePolicy() {
        let allowed = [0, 1]
        #expect(CPUAffinity.cpu(forWorkerSlot: 1, policy: .none, requestThreads: 1, allowed: allowed) == nil)
        // A worker started by hand or as CGI has no slot.
        #expect(CPUAffinity.cpu(forWorkerSlot: nil, policy: .auto, requestThreads: 1, allowed: allowed) == nil)
        // Several request threads are there to use several CPUs.
        #expect(CPUAffinity.cpu(forWorkerSlot: 0, policy: .auto, requestThreads: 2, allowed: allowed) == nil)
        #expect(CPUAffinity.cpu(forWorkerSlot: 0, policy: .auto, requestThreads: 1, allowed: [3]) == nil)
        #expect(CPUAffinity.cpu(forWorkerSlot: 0, policy: .auto, requestThreads: 1, allowed: []) == nil)
    }

    @Test func bindingAThreadLeavesTheProcessAndItsOtherThreadsFree() {
        let allowed = CPUAffinity.allowedCPUs()
        #expect(!allowed.isEmpty)
        let target = allowed.last!
        let seenByBoundThread = Mutex<(bound: Bool, cpus: [Int])>((false, []))
        let thread = startThread(name: "affinity-test") {
            let bound = CPUAffinity.bindCurrentThread(to: target)
            let cpus = CPUAffinity.allowedCPUs()
            seenByBoundThread.withLock { $0 = (bound, cpus) }
        }
        pthread_join(thread, nil)
        let seen = seenByBoundThread.withLock { $0 }
        #expect(seen.bound)
        #expect(seen.cpus == [target])
        #expect(CPUAffinity.allowedCPUs() == allowed)
    }

    @Test func aCPUOutsideTheSetIsRefused() {
        let thread = startThread(name: "affinity-bad") {
            #expect(!CPUAffinity.bindCurrentThread(to: -1))
            #expect(!CPUAffinity.bindCurrentThread(to: 1 << 20))
        }
        pthread_join(thread, nil)
    }
}
