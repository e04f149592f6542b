#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import Synchronization

/// A persistent pool of compute threads. `run` hands one job to every thread (the caller is thread 0) and returns
/// when all have finished. Workers spin briefly between jobs (ops follow each other within microseconds during a
/// forward pass), then sleep on a condition variable.
///
/// The engine's compute never runs on Swift concurrency's cooperative pool or an event loop: the caller of `run` is
/// an engine thread, and the workers are plain pthreads owned by the pool.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let cursor = Atomic<Int>(0)
    private var job: ((Int, Int) -> Void)?
    private var threads: [pthread_t] = []
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    /// Spin iterations before a worker sleeps.
    private static let spinLimit = 200_000

    /// Number of online CPUs.
    public static var availableCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Scheduling niceness of the worker threads (0 = normal; a server raises it so its event loops stay responsive).
    public let niceness: Int32

    public init(threadCount: Int = ThreadPool.availableCores, niceness: Int32 = 0) {
        self.threadCount = max(1, threadCount)
        self.niceness = niceness
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for index in 1..<self.threadCount {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                let start = Unmanaged<WorkerStart>.fromOpaque(raw).takeRetainedValue()
                start.pool?.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            if rc == 0 { threads.append(thread) } else { box.release() }
        }
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    private final class WorkerStart {
        weak var pool: ThreadPool?
        let index: Int
        init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
    }

    /// Runs `body(threadIndex, threadCount)` on every thread of the pool and waits for all of them.
    public func run(_ body: (Int, Int) -> Void) {
        let workers = threads.count + 1
        if workers == 1 { body(0, 1); return }
        withoutActuallyEscaping(body) { escaping in
            job = escaping
            remaining.store(workers - 1, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(cond)
                pthread_mutex_unlock(mutex)
            }
            escaping(0, workers)
            while remaining.load(ordering: .acquiring) > 0 {}
            job = nil
        }
    }

    /// Runs `body` over `0..<count` in chunks of `chunk` handed out one at a time to whichever thread is free, and
    /// waits for all of them. The cores are shared (HTTP threads, other processes): a thread that is descheduled
    /// holds up only the chunk it is on, where fixed halves would leave the other thread waiting for all of its half.
    /// `body(threadIndex, range)`: the index (0 = the caller) is for per-thread scratch space.
    public func runChunked(_ count: Int, chunk: Int, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunk = max(1, chunk)
        if threads.isEmpty || count <= chunk { body(0, 0..<count); return }
        cursor.store(0, ordering: .relaxed)
        run { thread, _ in
            while true {
                let start = cursor.wrappingAdd(chunk, ordering: .relaxed).oldValue
                if start >= count { break }
                body(thread, start..<min(count, start + chunk))
            }
        }
    }

    /// Splits `0..<count` into one contiguous range per thread (multiples of `granularity` where possible).
    @inlinable
    public static func split(_ count: Int, thread: Int, of threads: Int, granularity: Int = 1) -> Range<Int> {
        let units = (count + granularity - 1) / granularity
        let per = units / threads, extra = units % threads
        let startUnit = thread * per + min(thread, extra)
        let endUnit = startUnit + per + (thread < extra ? 1 : 0)
        return min(count, startUnit * granularity)..<min(count, endUnit * granularity)
    }

    /// Lowers the calling thread's priority by `niceness` (Linux: per thread). No effect when 0.
    public static func setCurrentThreadNiceness(_ niceness: Int32) {
        guard niceness != 0 else { return }
        _ = sy_set_thread_niceness(niceness)
    }

    private func workerLoop(index: Int) {
        ThreadPool.setCurrentThreadNiceness(niceness)
        // Generation 0 is the pool's state at creation: a job posted before this thread first runs is still seen.
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < ThreadPool.spinLimit { continue }
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(cond, mutex)
                }
                sleepers.subtract(1, ordering: .relaxed)
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { return }
            if let job { job(index, threads.count + 1) }
            remaining.subtract(1, ordering: .releasing)
        }
    }
}
