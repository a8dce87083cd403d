/* example_test_program.c - the flow of a test program that provisions dies with waferprov.
 *
 *   example_test_program ENDPOINT SERVER_PUB TESTER_KEY JOB_ID TESTER_ID
 *                        [LOT [WAFER [--step | --final-test]]]
 *
 *   ENDPOINT    the host's `waferprov serve` address, e.g. tcp://127.0.0.1:7450
 *   SERVER_PUB  the host's public key file (server.pub from `waferprov job init`)
 *   TESTER_KEY  this tester's secret key file (tester-ID.key, mode 0600)
 *   JOB_ID      the job the lot runs under (job.toml, [job] id)
 *   TESTER_ID   this tester's id, the one the job binds to TESTER_KEY
 *   LOT, WAFER  which wafer is on the prober (default LOT-EXAMPLE, 1); its substrate id, which
 *               a prober reads from the wafer, is made up here as LOT-WW (e.g. LOT-EXAMPLE-01)
 *   --step      wait for a line on stdin before each touchdown after the first, as a program
 *               waits for the prober to step (the Wine test restarts the host meanwhile)
 *   --final-test after the wafer, the same dies come back packaged at final test (protocol
 *               1.2, docs/final-test.md): one handler touchdown asks the host to challenge
 *               them; a real program has each part sign its challenge message and reports the
 *               signature. These parts are imaginary and hold no key, so they are reported
 *               FAILED (bin "NOKEY") without a signature, which the host records as failed at
 *               final test.
 *
 * A real test program does the same inside its test flow: open one session when the lot
 * starts, then at every touchdown ask for the identities of the dies under the probe card,
 * program each die that got one, and report what happened; close the session at the end of
 * the lot. Here the prober is imaginary: three touchdowns of a x4 probe card stepping along a
 * row, and "programming" a die is a printf.
 *
 * If the host restarts during the lot, nothing changes for the program: the library opens a
 * new session and resends the request. The program only notices that the session id changed.
 *
 * Exit status: 0 every die was provisioned and every result acknowledged; 1 usage; 2 a call
 * failed (the reason is printed); 3 the host refused some dies or results (printed per die).
 *
 * Pure C11: it is compiled with -std=c11 -pedantic, which also proves waferprov_ate.h is C.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waferprov_ate.h"

enum { SITES = 4, TOUCHDOWNS = 3 };

/* Prints why a call failed: the status's name and meaning, then the detail for this failure
 * (the host's ERROR text or the library's reason). `handle` is NULL for wp_ate_open and
 * wp_ate_read_key_file, whose detail is kept per thread. */
static void report_failure(const char* what, int status, const wp_ate* handle) {
    fprintf(stderr, "%s failed: %s\n  %s\n", what, wp_ate_strerror(status),
            wp_ate_last_error(handle));
}

static void print_hex(const uint8_t* p, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) printf("%02x", p[i]);
}

int main(int argc, char** argv) {
    char server_public[WP_ATE_KEY_Z85_LENGTH + 1];
    char tester_public[WP_ATE_KEY_Z85_LENGTH + 1];
    char tester_secret[WP_ATE_KEY_Z85_LENGTH + 1];
    const char* lot = argc > 6 ? argv[6] : "LOT-EXAMPLE";
    const uint16_t wafer = (uint16_t)(argc > 7 ? strtoul(argv[7], NULL, 10) : 1);
    const int step = argc > 8 && strcmp(argv[8], "--step") == 0;
    const int final_test = argc > 8 && strcmp(argv[8], "--final-test") == 0;
    uint8_t programmed_uids[TOUCHDOWNS * SITES][WP_ATE_UID_SIZE];
    size_t n_programmed = 0;
    char substrate[300];
    uint64_t session;
    wp_ate_config config;
    wp_ate* ate = NULL;
    int rc, t, refused = 0;

    if (argc < 6 || argc > 9 || (argc == 9 && !step && !final_test)) {
        fprintf(stderr,
                "usage: %s ENDPOINT SERVER_PUB TESTER_KEY JOB_ID TESTER_ID "
                "[LOT [WAFER [--step | --final-test]]]\n",
                argv[0]);
        return 1;
    }
    printf("libwaferprov_ate %s (ABI %d)\n", wp_ate_version(), wp_ate_abi_version());
    snprintf(substrate, sizeof substrate, "%s-%02u", lot, (unsigned)wafer);

    /* 1. Keys. The host's public key, and this tester's key pair (the secret file must be
     *    readable by its owner only). Nothing else is secret on the tester side. */
    rc = wp_ate_read_key_file(argv[2], server_public, NULL);
    if (rc != WP_ATE_OK) {
        report_failure("reading the server's public key", rc, NULL);
        return 2;
    }
    rc = wp_ate_read_key_file(argv[3], tester_public, tester_secret);
    if (rc != WP_ATE_OK) {
        report_failure("reading the tester's key", rc, NULL);
        return 2;
    }

    /* 2. Open the session. Zero the config first and set struct_size, so that a program built
     *    against this header keeps working with a later library. */
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.endpoint = argv[1];
    config.server_public_key = server_public;
    config.client_public_key = tester_public;
    config.client_secret_key = tester_secret;
    config.tester_id = argv[5];
    config.job_id = argv[4];
    config.node_name = NULL;  /* this machine's host name */
    config.timeout_ms = 5000; /* per attempt */
    config.retries = 2;       /* resends after a timeout: at most 15 s per call in all */
    rc = wp_ate_open(&config, &ate);
    /* The library has its own copy of the secret key now; don't keep ours around. */
    memset(tester_secret, 0, sizeof tester_secret);
    if (rc != WP_ATE_OK) {
        /* A host that does not admit this tester's key never answers: E_TIMEOUT. A key it
         * admits but for another tester id: S_NOT_ADMITTED. A job it does not serve:
         * S_UNKNOWN_JOB. */
        report_failure("wp_ate_open", rc, NULL);
        return 2;
    }
    session = wp_ate_session_id(ate);
    printf("session %" PRIu64 " with %s: up to %d sites per touchdown\n", session, argv[1],
           wp_ate_max_sites(ate));

    /* 3. Touchdowns. */
    for (t = 0; t < TOUCHDOWNS; ++t) {
        const uint32_t sequence = (uint32_t)t + 1; /* numbers the touchdowns of the session */
        wp_ate_site_request sites[SITES];
        wp_ate_site_identity identities[SITES];
        wp_ate_site_result results[SITES];
        wp_ate_result_ack acks[SITES];
        size_t n_results = 0, i;

        if (step && t > 0) {
            /* Where a real program waits for the prober to step to the next dies. */
            char line[64];
            printf("touchdown %u: waiting for the prober (a line on stdin)\n", (unsigned)sequence);
            fflush(stdout);
            if (fgets(line, sizeof line, stdin) == NULL) {
                fprintf(stderr, "stdin closed before touchdown %u\n", (unsigned)sequence);
                wp_ate_close(ate);
                return 2;
            }
        }

        /* Which die sits under which site. This probe card is 2 x 2; the dies carry no UID of
         * their own, so the host assigns one (has_uid = 0). */
        memset(sites, 0, sizeof sites);
        for (i = 0; i < SITES; ++i) {
            sites[i].site = (uint16_t)i;
            sites[i].x = (int32_t)(2 * t + (int)(i % 2));
            sites[i].y = (int32_t)(i / 2);
            sites[i].has_uid = 0;
        }

        /* Identities for the dies under the probe card. On E_TIMEOUT the same call (same
         * sequence, same sites) may simply be repeated: the host answers it as before and never
         * issues twice. S_BUSY asks for exactly that too. The substrate id names the physical
         * wafer, so the host never mistakes another wafer with the same number for this one. */
        rc = wp_ate_touchdown_wafer(ate, lot, wafer, substrate, sequence, sites, SITES, identities);
        if (rc != WP_ATE_OK) {
            report_failure("wp_ate_touchdown_wafer", rc, ate);
            wp_ate_close(ate);
            return 2;
        }
        if (wp_ate_session_id(ate) != session) {
            /* The host restarted and answered NO_SESSION: the library said HELLO again and
             * resent the touchdown. Nothing to do here but to know. */
            printf("  the host restarted: session %" PRIu64 " -> %" PRIu64
                   ", the touchdown was resent\n",
                   session, wp_ate_session_id(ate));
            session = wp_ate_session_id(ate);
        }

        /* Program each die that got an identity (OK, or REISSUED for a retested die: the same
         * identity as before). identities[] is in the order of sites[]. */
        for (i = 0; i < SITES; ++i) {
            const wp_ate_site_identity* id = &identities[i];
            if (id->status != WP_ATE_OK && id->status != WP_ATE_S_REISSUED) {
                /* Refused (quota used up, not on the map, ...): leave the die unprogrammed
                 * and send no result for it. */
                printf("  touchdown %u site %u (%d,%d): refused: %s (%s)\n", (unsigned)sequence,
                       (unsigned)id->site, (int)sites[i].x, (int)sites[i].y,
                       wp_ate_strerror(id->status), id->text);
                ++refused;
                continue;
            }
            /* A real program writes the wrapped key (and the certificate, if the die stores
             * it) into the die's OTP here and reads it back. */
            printf("  touchdown %u site %u (%d,%d): %s uid ", (unsigned)sequence,
                   (unsigned)id->site, (int)sites[i].x, (int)sites[i].y,
                   id->status == WP_ATE_OK ? "program" : "re-program");
            print_hex(id->uid, sizeof id->uid);
            printf(", wrapped key ");
            print_hex(id->wrapped_key, 8);
            printf("..., certificate %zu bytes\n", id->certificate_length);

            results[n_results].site = id->site;
            memcpy(results[n_results].uid, id->uid, sizeof results[n_results].uid);
            results[n_results].outcome = WP_ATE_PROGRAMMED; /* WP_ATE_FAILED if it did not */
            results[n_results].bin = "1";
            ++n_results;
            memcpy(programmed_uids[n_programmed++], id->uid, WP_ATE_UID_SIZE);
        }
        if (n_results == 0) continue;

        /* Report what happened to each delivered die. acks[] is in the order of results[]. */
        rc = wp_ate_results(ate, sequence, results, n_results, acks);
        if (rc != WP_ATE_OK) {
            report_failure("wp_ate_results", rc, ate);
            wp_ate_close(ate);
            return 2;
        }
        for (i = 0; i < n_results; ++i) {
            if (acks[i].status != WP_ATE_OK) {
                printf("  touchdown %u site %u: result refused: %s (%s)\n", (unsigned)sequence,
                       (unsigned)acks[i].site, wp_ate_strerror(acks[i].status), acks[i].text);
                ++refused;
            }
        }
    }

    /* 4. Final test (optional): the dies, packaged, in a handler's sites, by their UIDs. */
    if (final_test && n_programmed > 0) {
        wp_ate_part_request parts[TOUCHDOWNS * SITES];
        wp_ate_part_answer answers[TOUCHDOWNS * SITES];
        wp_ate_part_result fresults[TOUCHDOWNS * SITES];
        wp_ate_result_ack facks[TOUCHDOWNS * SITES];
        const uint32_t sequence = TOUCHDOWNS + 1; /* the session's touchdown numbering goes on */
        size_t i, n_fresults = 0;
        memset(parts, 0, sizeof parts);
        for (i = 0; i < n_programmed; ++i) {
            parts[i].site = (uint16_t)(i + 1);
            memcpy(parts[i].uid, programmed_uids[i], WP_ATE_UID_SIZE);
            parts[i].carrier_id = "STRIP-1"; /* where the part sits in its strip */
            parts[i].row = (uint16_t)(i / 4);
            parts[i].column = (uint16_t)(i % 4);
        }
        rc = wp_ate_final_touchdown(ate, lot, "HANDLER-1", sequence, parts, n_programmed, answers);
        if (rc != WP_ATE_OK) {
            report_failure("wp_ate_final_touchdown", rc, ate);
            wp_ate_close(ate);
            return 2;
        }
        for (i = 0; i < n_programmed; ++i) {
            const wp_ate_part_answer* a = &answers[i];
            if (a->status != WP_ATE_S_VERIFY) {
                printf("  final test site %u: %s (%s)\n", (unsigned)a->site,
                       wp_ate_strerror(a->status), a->text);
                ++refused;
                continue;
            }
            /* A real program hands a->message (WP_ATE_CHALLENGE_MESSAGE_SIZE bytes) to the part,
             * which signs it with ECDSA P-256 and its provisioned key, and reports r || s with
             * has_signature = 1 and outcome WP_ATE_PROGRAMMED. */
            printf("  final test site %u: uid ", (unsigned)a->site);
            print_hex(a->uid, sizeof a->uid);
            printf(" provisioned at sort, challenge ");
            print_hex(a->challenge, 8);
            printf("...: no part here to sign it\n");
            memset(&fresults[n_fresults], 0, sizeof fresults[n_fresults]);
            fresults[n_fresults].site = a->site;
            memcpy(fresults[n_fresults].uid, a->uid, WP_ATE_UID_SIZE);
            fresults[n_fresults].outcome = WP_ATE_FAILED;
            fresults[n_fresults].bin = "NOKEY";
            fresults[n_fresults].has_signature = 0;
            ++n_fresults;
        }
        if (n_fresults > 0) {
            rc = wp_ate_final_results(ate, sequence, fresults, n_fresults, facks);
            if (rc != WP_ATE_OK) {
                report_failure("wp_ate_final_results", rc, ate);
                wp_ate_close(ate);
                return 2;
            }
            for (i = 0; i < n_fresults; ++i)
                if (facks[i].status != WP_ATE_OK) {
                    printf("  final test site %u: result refused: %s (%s)\n",
                           (unsigned)facks[i].site, wp_ate_strerror(facks[i].status),
                           facks[i].text);
                    ++refused;
                }
        }
        printf("final test: %u parts challenged, %u reported\n", (unsigned)n_programmed,
               (unsigned)n_fresults);
    }

    /* 5. Close: says BYE (waiting at most timeout_ms) and frees the handle. */
    wp_ate_close(ate);
    printf("done: %d touchdowns, %d refusals\n", TOUCHDOWNS, refused);
    return refused == 0 ? 0 : 3;
}
