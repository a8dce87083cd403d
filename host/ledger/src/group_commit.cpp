#include "group_commit.hpp"

#include "ledger_impl.hpp"

namespace waferprov::host {

Status GroupCommitter::run(const Apply& apply) {
    Request req;
    req.apply = &apply;
    std::unique_lock lock(mu_);
    queue_.push_back(&req);
    for (;;) {
        if (req.status) return std::move(*req.status);
        if (!leading_) {
            // Lead: everything queued now (this request included, since it is not done) is
            // one group; what arrives while it commits waits for the next.
            leading_ = true;
            std::deque<Request*> group;
            group.swap(queue_);
            lock.unlock();
            commit_group(group);
            lock.lock();
            leading_ = false;
            cv_.notify_all();
            continue;
        }
        cv_.wait(lock);
    }
}

Ledger::GroupStats GroupCommitter::stats() const {
    std::lock_guard lock(mu_);
    Ledger::GroupStats s = stats_;
    s.queued = queue_.size();
    return s;
}

void GroupCommitter::commit_group(const std::deque<Request*>& group) {
    auto finish_all = [&](const Status& st) {
        std::lock_guard lock(mu_);
        for (Request* r : group)
            if (!r->status) r->status = st;
    };
    // The boundary between the requesting threads and the leader: nothing thrown may leave a
    // follower waiting forever.
    try {
        std::lock_guard ledger_lock(m_.mu);
        if (auto st = m_.writable(); !st.ok()) return finish_all(st);
        auto txn = Txn::begin(*m_.db, true);
        if (!txn.ok()) return finish_all(txn.error());
        auto loaded = m_.load_write_state();
        if (!loaded.ok()) return finish_all(loaded.error());
        WriteState ws = *loaded;
        std::vector<Status> outcome(group.size());
        size_t applied = 0;
        for (size_t i = 0; i < group.size(); ++i) {
            if (group.size() == 1) {
                // Alone: the transaction itself is the request's rollback.
                outcome[i] = (*group[i]->apply)(ws);
                if (!outcome[i].ok()) return finish_all(outcome[i]);
                ++applied;
                break;
            }
            if (auto st = m_.db->exec("SAVEPOINT request"); !st.ok()) {
                outcome[i] = st;
                continue;
            }
            const WriteState before = ws;
            outcome[i] = (*group[i]->apply)(ws);
            // Writes sent ahead (PostgreSQL) answer now, so that a failure is this request's.
            if (outcome[i].ok()) outcome[i] = m_.db->flush();
            if (!outcome[i].ok()) {
                ws = before;
                // If even the rollback to the savepoint fails, the transaction's state is
                // unknown: fail the whole group rather than commit a half-applied request.
                if (auto st = m_.db->exec("ROLLBACK TO request; RELEASE request"); !st.ok())
                    return finish_all(st);
                continue;
            }
            if (auto st = m_.db->exec("RELEASE request"); !st.ok()) return finish_all(st);
            ++applied;
        }
        if (ws.dirty) {
            if (auto st = m_.commit(*txn, ws, applied); !st.ok()) return finish_all(st);
        }
        std::lock_guard lock(mu_);
        if (ws.dirty) {
            ++stats_.transactions;
            stats_.requests += applied;
            stats_.largest = std::max<uint64_t>(stats_.largest, applied);
        }
        for (size_t i = 0; i < group.size(); ++i) group[i]->status = std::move(outcome[i]);
    } catch (const std::exception& e) {
        finish_all(make_error(ErrorCode::kInternal,
                              std::string("ledger: a grouped transaction failed: ") + e.what()));
    } catch (...) {
        finish_all(make_error(ErrorCode::kInternal, "ledger: a grouped transaction failed"));
    }
}

}  // namespace waferprov::host
