import Foundation

/// A task executor with threads of its own, outside Swift's cooperative pool (one thread a core). The service's
/// blocking work runs on one: the walk of a tenant's storage for its disk quota, the probes of the hosts. On the
/// cooperative pool that work could wait behind anything else the process blocks on (on a 2-core host, two such
/// tasks leave the pool no thread), and a job filling the disk would run unchecked while it waited.
public final class DedicatedThreads: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [UnownedJob] = []
    private var head = 0

    /// Starts `count` threads named `name-0`, `name-1`, …; they live as long as the process.
    public init(count: Int, name: String) {
        for i in 0..<max(1, count) {
            let thread = Thread { self.serve() }
            thread.name = "\(name)-\(i)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while head == queue.count { condition.wait() }
            let job = queue[head]
            head += 1
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// The threads of the service's blocking work (disk-quota walks, host probes).
    public static let blockingWork = DedicatedThreads(count: 2, name: "dojo-blocking")
}
