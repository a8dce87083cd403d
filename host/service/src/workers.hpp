// The service's workers: the ledger work of every request (a TOUCHDOWN's identities, a RESULTS'
// state changes) runs on a pool of threads, off the I/O thread, so that one slow ledger commit
// never holds up the link; a checkpointer thread copies the ledgers' write-ahead logs into their
// databases when the link is idle.
//
// Thread-safety: submit(), take_done(), drop_queued() and touch() are for the I/O thread; the
// pool's own threads run the work. done_fd() becomes readable when answers are ready.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "job_link.hpp"
#include "service_log.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/host/protocol.hpp"
#include "waferprov/host/service.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::svc {

// A request handed to the workers.
struct Work {
    uint64_t id = 0;
    Bytes routing_id;
    uint64_t session_id = 0;
    link::JobLink* job = nullptr;
    std::string tester;
    uint8_t minor = 0;
    protocol::Frame frame;  // a TOUCHDOWN (or TOUCHDOWN_WAFER) or a RESULTS
    std::chrono::steady_clock::time_point received;
};

// Its answer, encoded (an ERROR frame when the work failed).
struct Done {
    uint64_t work_id = 0;
    Bytes routing_id;
    uint64_t session_id = 0;
    Bytes answer;
};

class Workers {
public:
    // `jobs`, `counters` and `observer` (may be null: ServiceOptions::observer) outlive the
    // pool. `verbose`: log every request, not only refusals.
    static Result<std::unique_ptr<Workers>> create(
        const std::vector<std::unique_ptr<link::JobLink>>& jobs, link::Counters& counters,
        ServiceLog& log, bool verbose, ServiceObserver* observer);
    ~Workers();  // finishes the work being done, drops the queue, joins every thread
    Workers(const Workers&) = delete;
    Workers& operator=(const Workers&) = delete;

    // Starts `threads` workers (at least one) and the checkpointer.
    void start(size_t threads);
    // Queues `w`; false when `max_pending` requests are queued already (the caller says BUSY).
    bool submit(Work w, size_t max_pending);
    // The answers ready since the last call (after done_fd() became readable).
    std::deque<Done> take_done();
    // Drops the requests no worker has started (the shutdown deadline passed).
    void drop_queued();
    // Marks link activity now: the checkpointer waits for a gap in it.
    void touch();
    int done_fd() const { return done_fd_; }
    // Requests a worker has taken and not yet answered (any thread).
    size_t busy() const;

private:
    Workers(const std::vector<std::unique_ptr<link::JobLink>>& jobs, link::Counters& counters,
            ServiceLog& log, bool verbose, ServiceObserver* observer);
    void worker_loop();
    void checkpoint_loop();
    Bytes work(Work& w) noexcept;
    protocol::Message touchdown(Work& w, const protocol::Touchdown& td);
    protocol::Message final_touchdown(Work& w, const protocol::FinalTouchdown& ft);
    protocol::Message final_results(Work& w, const protocol::Results& rs);
    protocol::Message results(Work& w, const protocol::Results& rs);

    const std::vector<std::unique_ptr<link::JobLink>>& jobs_;
    link::Counters& counters_;
    ServiceLog& log_;
    bool verbose_;
    ServiceObserver* observer_;
    int done_fd_ = -1;  // eventfd: a worker finished a request

    mutable std::mutex mu_;
    std::condition_variable cv_;             // the workers wait on it
    std::condition_variable checkpoint_cv_;  // only the checkpointer waits on it
    std::deque<Work> queue_;
    std::deque<Done> done_;
    bool stop_ = false;
    size_t busy_ = 0;  // workers running a request (under mu_)
    std::vector<std::thread> threads_;
    std::thread checkpointer_;
    std::atomic<int64_t> last_activity_ns_{0};
};

}  // namespace waferprov::host::svc
