// Group commit for the ledger's write requests (docs/ledger.md, "Group commit"): requests that
// arrive while a transaction is committing queue up, and the next transaction carries all of
// them - one BEGIN IMMEDIATE, one COMMIT (one WAL fsync) and one anchor append for the group.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "waferprov/host/ledger.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

struct WriteState;

// Leader/follower: the first thread to find no transaction in progress becomes the leader, takes
// every request queued so far (its own included), applies them in arrival order inside one
// transaction and commits; the others wait. Then the leader wakes them all: each returns with
// its own request's outcome, and one of those still queued leads the next group. No dedicated
// thread, so a lone request (the pipeline, a test, an idle link) pays nothing for the grouping.
//
// Each request runs under a SAVEPOINT of its own: a request that fails (a storage error while
// applying it) is rolled back to its savepoint and gets the error, and the group goes on, so
// one request's failure never changes another's outcome. Refusals (unknown UID, a die already
// PROGRAMMED, ...) are values inside a request's results, not failures, as without grouping.
// No request returns before the COMMIT that holds it is durable (and the anchor advanced);
// if the COMMIT fails, every request of the group gets that error and nothing of it is written.
class GroupCommitter {
public:
    // Applies one request inside the open write transaction, advancing `ws`.
    using Apply = std::function<Status(WriteState& ws)>;

    explicit GroupCommitter(Ledger::Impl& m) : m_(m) {}
    GroupCommitter(const GroupCommitter&) = delete;
    GroupCommitter& operator=(const GroupCommitter&) = delete;

    // Queues `apply` and returns once the transaction holding it has committed (or failed).
    // The caller must not hold the ledger's mutex.
    Status run(const Apply& apply);

    Ledger::GroupStats stats() const;

private:
    struct Request {
        const Apply* apply = nullptr;
        std::optional<Status> status;  // set by the leader when the request's group is done
    };
    // The leader's work: one transaction for `group` (under the ledger's mutex).
    void commit_group(const std::deque<Request*>& group);

    Ledger::Impl& m_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Request*> queue_;  // requests waiting for a group
    bool leading_ = false;        // a leader is applying or committing a group
    Ledger::GroupStats stats_{};
};

}  // namespace waferprov::host
