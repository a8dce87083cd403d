#include "workers.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

namespace waferprov::host::svc {

namespace pr = protocol;
using pr::StatusCode;
using Clock = std::chrono::steady_clock;

namespace {

// Copies each job's write-ahead log into its database (Ledger::defer_checkpoints) when the link
// has been idle for kCheckpointIdle - on a floor, during the prober's index time - or, under
// load without a pause, once the log passes kCheckpointPages. A checkpoint writes and fsyncs the
// database file, which slows the touchdowns committing meanwhile; so it waits for a gap rather
// than running on a clock.
constexpr auto kCheckpointIdle = std::chrono::milliseconds(20);
constexpr int kCheckpointPages = 16384;  // 64 MiB of log

}  // namespace

Result<std::unique_ptr<Workers>> Workers::create(
    const std::vector<std::unique_ptr<link::JobLink>>& jobs, link::Counters& counters,
    ServiceLog& log, bool verbose, ServiceObserver* observer) {
    std::unique_ptr<Workers> w(new Workers(jobs, counters, log, verbose, observer));
    w->done_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->done_fd_ < 0) return make_error(ErrorCode::kIo, "eventfd failed");
    return w;
}

Workers::Workers(const std::vector<std::unique_ptr<link::JobLink>>& jobs, link::Counters& counters,
                 ServiceLog& log, bool verbose, ServiceObserver* observer)
    : jobs_(jobs), counters_(counters), log_(log), verbose_(verbose), observer_(observer) {}

Workers::~Workers() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    checkpoint_cv_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    if (checkpointer_.joinable()) checkpointer_.join();
    if (done_fd_ >= 0) ::close(done_fd_);
}

void Workers::start(size_t threads) {
    for (size_t i = 0; i < std::max<size_t>(1, threads); ++i)
        threads_.emplace_back([this] { worker_loop(); });
    checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

bool Workers::submit(Work w, size_t max_pending) {
    {
        std::lock_guard lock(mu_);
        if (queue_.size() >= max_pending) return false;
        queue_.push_back(std::move(w));
    }
    cv_.notify_one();
    return true;
}

std::deque<Done> Workers::take_done() {
    uint64_t n = 0;
    [[maybe_unused]] auto r = ::read(done_fd_, &n, sizeof n);
    std::deque<Done> ready;
    std::lock_guard lock(mu_);
    ready.swap(done_);
    return ready;
}

void Workers::drop_queued() {
    std::lock_guard lock(mu_);
    queue_.clear();
}

void Workers::touch() {
    last_activity_ns_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

void Workers::checkpoint_loop() {
    std::vector<int> checkpointed_at(jobs_.size(), 0);  // wal_pages() at the last checkpoint
    std::unique_lock lock(mu_);
    while (!stop_) {
        checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(10));
        if (stop_) break;
        const bool idle =
            queue_.empty() && busy_ == 0 &&
            Clock::now().time_since_epoch().count() -
                    last_activity_ns_.load(std::memory_order_relaxed) >=
                std::chrono::duration_cast<std::chrono::nanoseconds>(kCheckpointIdle).count();
        lock.unlock();
        for (size_t i = 0; i < jobs_.size(); ++i) {
            const int pages = jobs_[i]->wal_pages();
            if (pages == checkpointed_at[i] || (!idle && pages < kCheckpointPages)) continue;
            if (auto st = jobs_[i]->checkpoint(); !st.ok())
                log_.line("job " + jobs_[i]->job().id +
                          ": ledger checkpoint failed: " + st.error().describe());
            checkpointed_at[i] = pages;
        }
        lock.lock();
    }
}

size_t Workers::busy() const {
    std::lock_guard lock(mu_);
    return busy_;
}

void Workers::worker_loop() {
    for (;;) {
        Work w;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;
            w = std::move(queue_.front());
            queue_.pop_front();
            ++busy_;
        }
        Done d;
        d.work_id = w.id;
        d.routing_id = std::move(w.routing_id);
        d.session_id = w.session_id;
        d.answer = work(w);
        touch();
        {
            std::lock_guard lock(mu_);
            done_.push_back(std::move(d));
            --busy_;
        }
        const uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(done_fd_, &one, sizeof one);
    }
}

pr::Message Workers::touchdown(Work& w, const pr::Touchdown& td) {
    auto r = w.job->touchdown(td, w.tester, counters_);
    if (observer_ != nullptr) {
        if (r.ok())
            observer_->touchdown_answered(
                w.job->job().id, w.tester, *r,
                std::chrono::duration<double>(Clock::now() - w.received).count());
        else
            observer_->request_failed(w.job->job().id, w.tester);
    }
    if (!r.ok()) {
        log_.line("touchdown " + std::to_string(td.sequence) + " of tester " + w.tester +
                  " failed: " + r.error().describe());
        return pr::ErrorReply{StatusCode::kInternal, pr::clip_text(r.error().message)};
    }
    if (verbose_) {
        size_t ok = 0, re = 0;
        for (const auto& s : r->sites) {
            ok += s.status == StatusCode::kOk;
            re += s.status == StatusCode::kReissued;
        }
        const double ms =
            std::chrono::duration<double, std::milli>(Clock::now() - w.received).count();
        log_.line("touchdown " + std::to_string(td.sequence) + " of tester " + w.tester + ": " +
                  std::to_string(td.sites.size()) + " sites, " + std::to_string(ok) + " OK, " +
                  std::to_string(re) + " REISSUED, " + std::to_string(td.sites.size() - ok - re) +
                  " refused, " + std::to_string(ms) + " ms");
    } else {
        for (const auto& s : r->sites)
            if (!pr::carries_identity(s.status))
                log_.limited("sites refused to tester " + w.tester + ": " + pr::to_string(s.status),
                             "touchdown " + std::to_string(td.sequence) + " of tester " + w.tester +
                                 ": site " + std::to_string(s.site) + " " +
                                 pr::to_string(s.status) + ": " + s.text);
    }
    return std::move(*r);
}

pr::Message Workers::results(Work& w, const pr::Results& rs) {
    auto r = w.job->results(rs, w.tester, counters_);
    if (observer_ != nullptr) {
        if (r.ok())
            observer_->results_answered(w.job->job().id, w.tester, rs, *r);
        else
            observer_->request_failed(w.job->job().id, w.tester);
    }
    if (!r.ok()) {
        log_.line("results " + std::to_string(rs.sequence) + " of tester " + w.tester +
                  " failed: " + r.error().describe());
        return pr::ErrorReply{StatusCode::kInternal, pr::clip_text(r.error().message)};
    }
    for (const auto& a : r->sites)
        if (a.status != StatusCode::kOk)
            log_.limited("results refused from tester " + w.tester + ": " + pr::to_string(a.status),
                         "results " + std::to_string(rs.sequence) + " of tester " + w.tester +
                             ": site " + std::to_string(a.site) + " " + pr::to_string(a.status) +
                             ": " + a.text);
    return std::move(*r);
}

// Final test (docs/final-test.md): the same shape as touchdown() / results(), with the
// session the challenges are bound to.
pr::Message Workers::final_touchdown(Work& w, const pr::FinalTouchdown& ft) {
    auto r = w.job->final_touchdown(ft, w.session_id, w.tester, counters_);
    if (!r.ok()) {
        log_.line("final touchdown " + std::to_string(ft.sequence) + " of tester " + w.tester +
                  " failed: " + r.error().describe());
        return pr::ErrorReply{StatusCode::kInternal, pr::clip_text(r.error().message)};
    }
    for (const auto& s : r->sites)
        if (!pr::carries_challenge(s.status) && !pr::carries_identity(s.status))
            log_.limited("sites refused to tester " + w.tester + ": " + pr::to_string(s.status),
                         "final touchdown " + std::to_string(ft.sequence) + " of tester " +
                             w.tester + ": site " + std::to_string(s.site) + " " +
                             pr::to_string(s.status) + ": " + s.text);
    return std::move(*r);
}

pr::Message Workers::final_results(Work& w, const pr::Results& rs) {
    auto r = w.job->final_results(rs, w.session_id, w.tester, counters_);
    if (!r.ok()) {
        log_.line("final results " + std::to_string(rs.sequence) + " of tester " + w.tester +
                  " failed: " + r.error().describe());
        return pr::ErrorReply{StatusCode::kInternal, pr::clip_text(r.error().message)};
    }
    for (const auto& a : r->sites)
        if (a.status != StatusCode::kOk)
            // A mismatch is an ALARM in the ledger; the log names it on every occurrence.
            log_.line("final results " + std::to_string(rs.sequence) + " of tester " + w.tester +
                      ": site " + std::to_string(a.site) + " " + pr::to_string(a.status) + ": " +
                      a.text);
    return std::move(*r);
}

// Runs one request against its job and encodes the answer (an ERROR frame on failure). A
// worker thread's boundary: nothing thrown below escapes it.
Bytes Workers::work(Work& w) noexcept {
    try {
        pr::Message answer;
        if (auto* td = std::get_if<pr::Touchdown>(&w.frame.message))
            answer = touchdown(w, *td);
        else if (auto* rs = std::get_if<pr::Results>(&w.frame.message))
            answer = rs->final_test ? final_results(w, *rs) : results(w, *rs);
        else if (auto* ft = std::get_if<pr::FinalTouchdown>(&w.frame.message))
            answer = final_touchdown(w, *ft);
        auto bytes = pr::encode(pr::Frame{w.frame.request_id, w.minor, std::move(answer)});
        if (bytes.ok()) return std::move(*bytes);
        log_.line("internal: cannot encode an answer: " + bytes.error().describe());
    } catch (const std::exception& e) {
        log_.line(std::string("internal: request failed: ") + e.what());
    }
    auto fallback = pr::encode(pr::Frame{w.frame.request_id, pr::kVersionMinor,
                                         pr::ErrorReply{StatusCode::kInternal, "the host failed"}});
    return fallback.ok() ? std::move(*fallback) : Bytes{};
}

}  // namespace waferprov::host::svc
