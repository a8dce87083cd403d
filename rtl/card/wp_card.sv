// wp_card: the card's user logic, the identity engines behind one register map and two streams
// (issue #14; docs/card.md describes the interfaces, the stream formats to the byte, ordering,
// keys, errors and zeroize; docs/register-map.md the registers, generated from card_regs.toml).
//
//   AXI4-Lite slave (32-bit, 4 KiB)  registers (card_regs_pkg)
//   AXI4-Stream sink   req_*         16-byte UIDs, DW bits a beat, tkeep/tlast
//   AXI4-Stream source rec_*         128-byte WPID-1 records, DW bits a beat
//   irq_o                            OR of IRQ_STATUS & IRQ_ENABLE
//   dk_i                             the device key DK (eFUSE / PUF / bitstream key on hardware)
//
// Datapath: one sym_die (KDF, the one DRBG, scalar draw, key wrap) takes the UIDs strictly in
// request order and numbers them from the sequence counter; each result (d, wrapped) is handed
// to a free engine (one p256_keygen each, NE of them) together with its sequence number and
// UID, and the engine index is pushed into an order FIFO (engines 2p and 2p + 1 share one
// table of multiples of G: p256_rom, the two ports of one block RAM). The record stage always
// waits for the engine at the head of that FIFO, so records leave in sequence order whichever
// engine finishes first (the FIFO is the reorder buffer: each engine's slot is its entry). sym_die
// computes the next die while the engines work and holds it until an engine is free, so the
// engines never wait for it as long as sym_die's ~590 cycles per die x NE stay below one key
// generation (NE <= 15).
//
// Secrets: d goes from sym_die's response straight into the chosen engine (no copy here) and
// is wiped by the engine one cycle after its result is taken; the KEK never leaves sym_die and
// is cleared there when the wrap is done. The KIK enters only as AES-KW(DK, KIK) through
// KIK_WRAPPED and is unwrapped by a management aes_kw on its own aes256 core (which also runs
// the self-test block operations); ENTROPY, PERS and KIK_WRAPPED are cleared once used. Every
// secret register reads 0. CTRL.ZEROIZE clears all of them, the KIK and, through a registered
// zeroize, every block of sym_die and every engine in one cycle.
//
// Errors (ERR, sticky): the first sets ERR_SEQ, raises IRQ_STATUS.ERR and halts: the request
// sink then takes and discards every beat (so a host's DMA never hangs) and no new die starts;
// dies already started (their scalar is drawn) still finish and their records come out, so
// that the record stream is exactly seq < SEQ_NEXT and no record is partial or wrong.
// CTRL.CLEAR_ERR (or writing ERR to zero) resumes; the next request gets SEQ_NEXT.
`default_nettype none

module wp_card #(
  parameter int unsigned  NE = 4,     // identity engines, 1..16
  parameter int unsigned  DW = 128,   // stream data width: 128, 256 or 512
  parameter logic [255:0] SCALAR_LIMIT = p256_pkg::N,  // benches lower it to reach rejection
  parameter               RomFile = "p256_base_table.mem"
) (
  input  wire logic                 clk_i,
  input  wire logic                 rst_ni,   // synchronous, active low
  input  wire logic [255:0]         dk_i,     // device key, byte 0 in [255:248]

  // AXI4-Lite slave
  input  wire logic                 s_awvalid_i,
  output      logic                 s_awready_o,
  input  wire logic [11:0]          s_awaddr_i,
  input  wire logic                 s_wvalid_i,
  output      logic                 s_wready_o,
  input  wire logic [31:0]          s_wdata_i,
  input  wire logic [3:0]           s_wstrb_i,
  output      logic                 s_bvalid_o,
  input  wire logic                 s_bready_i,
  output      logic [1:0]           s_bresp_o,
  input  wire logic                 s_arvalid_i,
  output      logic                 s_arready_o,
  input  wire logic [11:0]          s_araddr_i,
  output      logic                 s_rvalid_o,
  input  wire logic                 s_rready_i,
  output      logic [31:0]          s_rdata_o,
  output      logic [1:0]           s_rresp_o,

  // AXI4-Stream request sink (UIDs)
  input  wire logic                 req_tvalid_i,
  output      logic                 req_tready_o,
  input  wire logic [DW-1:0]        req_tdata_i,
  input  wire logic [DW/8-1:0]      req_tkeep_i,
  input  wire logic                 req_tlast_i,

  // AXI4-Stream record source
  output      logic                 rec_tvalid_o,
  input  wire logic                 rec_tready_i,
  output      logic [DW-1:0]        rec_tdata_o,
  output      logic [DW/8-1:0]      rec_tkeep_o,
  output      logic                 rec_tlast_o,

  output      logic                 irq_o,

  // Bench visibility (public, no key material): 1 while sym_die's KDF holds a KIK. Left
  // unconnected on hardware.
  output      logic                 dbg_kdf_kik_o
);
  localparam int unsigned BW    = DW / 8;         // bytes per beat
  localparam int unsigned UPB   = DW / 128;       // UIDs per request beat
  localparam int unsigned BEATS = 1024 / DW;      // beats per record
  localparam int unsigned EW    = (NE > 1) ? $clog2(NE) : 1;
  localparam int unsigned CW    = $clog2(NE + 1);
  localparam int unsigned UW    = $clog2(UPB + 1);
  localparam int unsigned IW    = (UPB > 1) ? $clog2(UPB) : 1;
  localparam int unsigned BTW   = (BEATS > 1) ? $clog2(BEATS) : 1;
  localparam logic [4:0] BwLog2 = 5'($clog2(BW));

  // ERR bits
  localparam int unsigned EReseed = 0, ENotInst = 1, ENoKik = 2, EPartial = 3, ETkeep = 4,
                          EUnwrap = 5, EBus = 6, ESelftest = 7;

  // ---------------------------------------------------------------------------------------
  // Registers of the register block.
  // ---------------------------------------------------------------------------------------
  logic [31:0]  scratch_q;
  logic [1:0]   irq_en_q, irq_st_q;
  logic [63:0]  seq_start_q;
  logic [47:0]  reseed_int_q;      // RESEED_INTERVAL as written
  logic [47:0]  reseed_live_q;     // latched at INSTANTIATE, what the DRBG enforces
  logic [31:0]  pers_len_q;
  logic [383:0] entropy_q, pers_q;
  logic [319:0] kikw_q;
  logic [2:0]   st_op_q;
  logic [31:0]  st_len_q;
  logic [255:0] st_key_q;          // self-test key (caller's, never the KIK)
  logic [2047:0] st_data_q;        // self-test input, byte 0 in [2047:2040]
  logic [2047:0] st_result_q;      // self-test output, byte 0 in [2047:2040]
  logic [8:0]   st_rlen_q;         // ST_RESULT_LEN
  logic [8:0]   st_out_q;          // ST_RESULT_LEN of the running operation if it succeeds
  logic         st_done_q, pend_st_q;
  logic [3:0]   st_blk_q;          // CMAC: the next message block
  logic         st_fed_q;          // CMAC: the last block was taken
  logic [7:0]   err_q;
  logic [63:0]  err_seq_q;

  // Card state.
  logic [255:0] kik_q;
  logic         kik_valid_q, new_kik_q, inst_q, reseed_req_q, zeroized_q;
  logic         zero_q;            // registered zeroize of sym_die and the engines (one cycle)
  logic         pend_kik_q, pend_inst_q, pend_reseed_q;
  logic [63:0]  seq_assign_q;      // sequence number the next die started gets
  logic [63:0]  seq_out_q;         // sequence number of the next record out
  logic [15:0]  lfsr_q;            // scan offsets for the engines (public randomness)

  logic halted;
  assign halted = (err_q != 8'h0);

  // ---------------------------------------------------------------------------------------
  // Management crypto: the KIK unwrap under DK on its own aes256 core.
  // ---------------------------------------------------------------------------------------
  // One command at a time: LOAD_KIK (MKik*; MKikClr clears sym_die's KIK copy after a failed
  // unwrap), INSTANTIATE (MFlush, MDrbg*), RESEED (MDrbg*) and the self-test (MSt*: block
  // encrypt/decrypt, CMAC, KW, d*G on engine 0).
  typedef enum logic [3:0] {
    MIdle, MKik, MKikWait, MKikClr, MFlush, MDrbg, MDrbgWait,
    MStBlk, MStBlkWait, MStCmInit, MStCmMsg, MStCmTag, MStKw, MStKwWait, MStDg, MStDgWait
  } mstate_e;
  mstate_e mst_q;
  logic    m_reseed_q;   // the DRBG command in MDrbg/MDrbgWait is a reseed
  // Registered decodes of mst_q for the wide multiplexers (the management aes_kw's 2,048-bit
  // request, ST_RESULT's sources, the AES core's owner): set as mst_q enters the states they
  // stand for and cleared as it leaves them, so those multiplexers start from flops. Decoded
  // from mst_q, the state ran through 6 LUT levels into ST_RESULT and the key wrap's R register
  // (fan-out 1,973; 5.7 ns by the timing model).
  logic    kik_sel_q;    // MKik, MKikWait
  // The management aes_kw's request, registered too: valid and the data selects only in the
  // request states (so DK and ST_DATA reach aes_kw only then, as with the state decode), and
  // its n and direction fixed when the command starts.
  logic       kw_req_kik_q;  // MKik
  logic       kw_req_st_q;   // MStKw
  logic [5:0] kw_n_q;
  logic       kw_unwrap_q;
  logic [4:0] st_src_q;  // the self-test running: 0 block, 1 CMAC, 2 KW wrap, 3 KW unwrap, 4 d*G

  // The self-test operation (ST_OP) and the checks of its length (ST_LEN).
  localparam logic [2:0] OpEnc = 3'd1, OpDec = 3'd2, OpCmac = 3'd3, OpWrap = 3'd4,
                         OpUnwrap = 3'd5, OpDg = 3'd6;
  logic       st_len_ok, st_kw, st_cm, st_blk_sel, st_dg, st_running, st_busy;
  // ST_LEN's check and the result length, registered: ST_OP and ST_LEN change only by a write,
  // and ST_START is applied at least two cycles after one (the check's carry chains were on
  // the path from ST_LEN through ERR into the request buffer).
  logic       st_len_ok_q;
  logic [5:0] st_n;          // KW: semiblocks of key data
  logic [8:0] st_out_len;    // ST_RESULT_LEN of a successful operation
  always_comb begin
    st_len_ok  = 1'b0;
    st_out_len = 9'd0;
    unique case (st_op_q)
      OpEnc, OpDec: begin
        st_len_ok  = (st_len_q == 32'd16);
        st_out_len = 9'd16;
      end
      OpCmac: begin
        st_len_ok  = (st_len_q <= 32'd256);
        st_out_len = 9'd16;
      end
      OpWrap: begin
        st_len_ok  = (st_len_q >= 32'd16) && (st_len_q <= 32'd248) && (st_len_q[2:0] == 3'd0);
        st_out_len = st_len_q[8:0] + 9'd8;
      end
      OpUnwrap: begin
        st_len_ok  = (st_len_q >= 32'd24) && (st_len_q <= 32'd256) && (st_len_q[2:0] == 3'd0);
        st_out_len = st_len_q[8:0] - 9'd8;
      end
      OpDg: begin
        st_len_ok  = (st_len_q == 32'd32);
        st_out_len = 9'd64;
      end
      default: ;
    endcase
  end
  assign st_n       = (st_op_q == OpUnwrap) ? st_len_q[8:3] - 6'd1 : st_len_q[8:3];
  assign st_kw      = st_src_q[2] || st_src_q[3];   // MStKw, MStKwWait
  assign st_cm      = st_src_q[1];                  // MStCmInit, MStCmMsg, MStCmTag
  assign st_blk_sel = st_src_q[0];                  // MStBlk, MStBlkWait
  assign st_dg      = st_src_q[4];                  // MStDg, MStDgWait
  assign st_running = st_kw || st_cm || st_blk_sel || st_dg;
  assign st_busy    = pend_st_q || st_running;

  // The management AES core is shared by the KIK unwrap / self-test KW (aes_kw), the
  // self-test CMAC (aes_cmac) and the self-test block operations (issued from here); the
  // owner follows from mst_q, and each finishes with the core idle before mst_q moves on.
  logic         kw_req_valid, kw_req_ready, kw_rsp_valid, kw_rsp_err;
  logic [255:0] kw_kek;
  logic [1983:0] kw_req_key, kw_rsp_key;
  logic [2047:0] kw_req_wrapped, kw_rsp_wrapped;
  logic         ka_req_valid, ka_req_ready, ka_req_dec, ka_rsp_valid, ka_rsp_ready;
  logic [255:0] ka_req_key;
  logic [127:0] ka_req_data;
  logic         own_kw, own_cm;

  assign own_kw = kik_sel_q || st_kw;
  assign own_cm = st_cm;

  // The KIK is unwrapped under DK with n = 4; a self-test wraps or unwraps the caller's data
  // under ST_KEY. DK never meets a self-test and ST_KEY never meets the KIK.
  assign kw_req_valid   = kw_req_kik_q || kw_req_st_q;
  assign kw_kek         = ({256{kw_req_kik_q}} & dk_i) | ({256{kw_req_st_q}} & st_key_q);
  assign kw_req_key     = {1984{kw_req_st_q}} & st_data_q[2047 -: 1984];
  assign kw_req_wrapped = ({2048{kw_req_kik_q}} & {kikw_q, 1728'h0}) |
                          ({2048{kw_req_st_q}} & st_data_q);

  logic         c_req_valid, c_req_ready, c_req_dec, c_rsp_valid, c_rsp_ready;
  logic [255:0] c_req_key;
  logic [127:0] c_req_data, c_rsp_data;
  logic         cm_req_valid, cm_req_dec, cm_rsp_ready;
  logic [255:0] cm_req_key;
  logic [127:0] cm_req_data;

  aes_kw #(.MaxN(31)) u_kik_kw (
    .clk_i, .rst_ni,
    .zeroize_i       (zero_q),
    .req_valid_i     (kw_req_valid),
    .req_ready_o     (kw_req_ready),
    .req_unwrap_i    (kw_unwrap_q),
    .req_n_i         (kw_n_q),
    .req_kek_i       (kw_kek),
    .req_key_i       (kw_req_key),
    .req_wrapped_i   (kw_req_wrapped),
    .rsp_valid_o     (kw_rsp_valid),
    .rsp_ready_i     ((mst_q == MKikWait) || (mst_q == MStKwWait)),
    .rsp_wrapped_o   (kw_rsp_wrapped),
    .rsp_key_o       (kw_rsp_key),
    .rsp_err_o       (kw_rsp_err),
    .aes_req_valid_o (ka_req_valid),
    .aes_req_ready_i (ka_req_ready),
    .aes_req_dec_o   (ka_req_dec),
    .aes_req_key_o   (ka_req_key),
    .aes_req_data_o  (ka_req_data),
    .aes_rsp_valid_i (ka_rsp_valid),
    .aes_rsp_ready_o (ka_rsp_ready),
    .aes_rsp_data_i  (c_rsp_data)
  );

  // Self-test CMAC: the message is ST_DATA, one 16-byte block at a time.
  logic         cm_init_ready, cm_keyed, cm_msg_valid, cm_msg_ready, cm_msg_last;
  logic         cm_tag_valid;
  logic [127:0] cm_msg_data, cm_tag;
  logic [4:0]   cm_msg_bytes;
  logic [3:0]   cm_last_blk;
  logic [8:0]   cm_rest;     // bytes from the current block on (1..16 in the last block)
  assign cm_last_blk  = (st_len_q[8:0] == 9'd0) ? 4'd0 : 4'((st_len_q[8:0] - 9'd1) >> 4);
  assign cm_msg_last  = (st_blk_q == cm_last_blk);
  assign cm_rest      = st_len_q[8:0] - {1'b0, st_blk_q, 4'h0};
  assign cm_msg_bytes = cm_msg_last ? cm_rest[4:0] : 5'd16;
  assign cm_msg_valid = (mst_q == MStCmMsg) && !st_fed_q;
  always_comb begin
    cm_msg_data = 128'h0;
    for (int k = 0; k < 16; k++)
      if (st_blk_q == 4'(k)) cm_msg_data = st_data_q[2047-128*k -: 128];
  end

  aes_cmac u_st_cmac (
    .clk_i, .rst_ni,
    .zeroize_i       (zero_q),
    .key_i           (st_key_q),
    .init_valid_i    (mst_q == MStCmInit),
    .init_ready_o    (cm_init_ready),
    .keyed_o         (cm_keyed),
    .msg_valid_i     (cm_msg_valid),
    .msg_ready_o     (cm_msg_ready),
    .msg_data_i      (cm_msg_data),
    .msg_last_i      (cm_msg_last),
    .msg_bytes_i     (cm_msg_bytes),
    .tag_valid_o     (cm_tag_valid),
    .tag_ready_i     (mst_q == MStCmTag),
    .tag_o           (cm_tag),
    .aes_req_valid_o (cm_req_valid),
    .aes_req_ready_i (c_req_ready && own_cm),
    .aes_req_dec_o   (cm_req_dec),
    .aes_req_key_o   (cm_req_key),
    .aes_req_data_o  (cm_req_data),
    .aes_rsp_valid_i (c_rsp_valid && own_cm),
    .aes_rsp_ready_o (cm_rsp_ready),
    .aes_rsp_data_i  (c_rsp_data)
  );

  assign ka_req_ready = c_req_ready && own_kw;
  assign ka_rsp_valid = c_rsp_valid && own_kw;
  always_comb begin
    c_req_valid = 1'b0;
    c_req_dec   = 1'b0;
    c_req_key   = 256'h0;
    c_req_data  = 128'h0;
    c_rsp_ready = 1'b0;
    if (own_kw) begin
      c_req_valid = ka_req_valid;
      c_req_dec   = ka_req_dec;
      c_req_key   = ka_req_key;
      c_req_data  = ka_req_data;
      c_rsp_ready = ka_rsp_ready;
    end else if (own_cm) begin
      c_req_valid = cm_req_valid;
      c_req_dec   = cm_req_dec;
      c_req_key   = cm_req_key;
      c_req_data  = cm_req_data;
      c_rsp_ready = cm_rsp_ready;
    end else if (st_blk_sel) begin
      c_req_valid = (mst_q == MStBlk);
      c_req_dec   = (st_op_q == OpDec) ? aes_pkg::OP_DEC : aes_pkg::OP_ENC;
      c_req_key   = st_key_q;
      c_req_data  = st_data_q[2047 -: 128];
      c_rsp_ready = (mst_q == MStBlkWait);
    end
  end

  // The management core behind a request register (aes256_rq, as sym_die's core). Without
  // it the owner's selects (st_src_q, kik_sel_q) ran through the owner multiplexer and
  // aes_kw's semiblock multiplexer into the core's state, key and control registers: 6 LUT
  // levels and a MUXF, 6.0 ns by the timing model at NE = 2. It costs one cycle per AES
  // operation of the self-test and the KIK unwrap.
  aes256_rq u_kik_aes (
    .clk_i, .rst_ni,
    .zeroize_i   (zero_q),
    .req_valid_i (c_req_valid),
    .req_ready_o (c_req_ready),
    .req_dec_i   (c_req_dec),
    .req_key_i   (c_req_key),
    .req_data_i  (c_req_data),
    .rsp_valid_o (c_rsp_valid),
    .rsp_ready_i (c_rsp_ready),
    .rsp_data_o  (c_rsp_data)
  );

  // ---------------------------------------------------------------------------------------
  // sym_die: the one symmetric chain (and the one DRBG).
  // ---------------------------------------------------------------------------------------
  logic         drbg_req_valid, drbg_req_ready, drbg_rsp_valid;
  logic [1:0]   drbg_rsp_err;
  logic         die_req_valid, die_req_ready, die_rsp_valid, die_rsp_ready;
  logic [127:0] die_uid;
  logic [319:0] die_wrapped;
  logic [255:0] die_scalar;
  logic [15:0]  die_rejects, die_cycles;
  logic [1:0]   die_err;
  logic [383:0] pers_masked;

  always_comb begin
    for (int i = 0; i < 48; i++) begin
      pers_masked[383-8*i -: 8] = (32'(i) < pers_len_q) ? pers_q[383-8*i -: 8] : 8'h00;
    end
  end

  assign drbg_req_valid = (mst_q == MDrbg) && !zero_q;

  logic kik_clr;   // clears sym_die's KIK copy (below, after a failed LOAD_KIK)

  sym_die #(.SCALAR_LIMIT(SCALAR_LIMIT)) u_sym (
    .clk_i, .rst_ni,
    .zeroize_i         (zero_q),
    .kik_clear_i       (kik_clr),
    .kik_held_o        (dbg_kdf_kik_o),
    .reseed_interval_i (reseed_live_q),
    .drbg_req_valid_i  (drbg_req_valid),
    .drbg_req_ready_o  (drbg_req_ready),
    .drbg_req_reseed_i (m_reseed_q),
    .drbg_entropy_i    (entropy_q),
    .drbg_pers_i       (m_reseed_q ? 384'h0 : pers_masked),
    .drbg_rsp_valid_o  (drbg_rsp_valid),
    .drbg_rsp_ready_i  (mst_q == MDrbgWait),
    .drbg_rsp_err_o    (drbg_rsp_err),
    .die_req_valid_i   (die_req_valid),
    .die_req_ready_o   (die_req_ready),
    .die_new_kik_i     (new_kik_q),
    .die_kik_i         (new_kik_q ? kik_q : 256'h0),
    .die_uid_i         (die_uid),
    .die_rsp_valid_o   (die_rsp_valid),
    .die_rsp_ready_i   (die_rsp_ready),
    .die_wrapped_o     (die_wrapped),
    .die_scalar_o      (die_scalar),
    .die_rejects_o     (die_rejects),
    .die_err_o         (die_err),
    .die_cycles_o      (die_cycles)
  );

  // ---------------------------------------------------------------------------------------
  // Request sink: one beat buffer of UPB UIDs (AXI lane order: UID byte j of slot u in
  // tdata[128u + 8j +: 8]).
  // ---------------------------------------------------------------------------------------
  logic [DW-1:0] bb_q;
  logic [UW-1:0] bb_cnt_q;     // UIDs left in the buffer
  logic [IW-1:0] bb_idx_q;     // slot of the next UID
  logic          bb_last_q;    // the beat ended a request packet

  logic          req_take, keep_full, keep_contig, keep_bad, keep_partial, keep_split;
  logic [UW-1:0] keep_uids;

  // tkeep decoded without counting its bytes: a serial count over BW bits was a 17-LUT path
  // from the stream into the beat buffer (Yosys + timing.py: 12.3 ns at DW = 128). A legal
  // tlast beat is a low run of bytes, and for a low run the byte count is only needed in units
  // of a UID: the full 16-byte groups are those whose top byte is kept, and the run ends inside
  // a group (a partial UID) where a group's low byte is kept but not its top one.
  always_comb begin
    keep_contig = 1'b1;
    for (int i = 1; i < BW; i++)
      if (req_tkeep_i[i] && !req_tkeep_i[i-1]) keep_contig = 1'b0;
    keep_split = 1'b0;
    keep_uids  = '0;
    for (int g = 0; g < UPB; g++) begin
      if (req_tkeep_i[16*g] && !req_tkeep_i[16*g+15]) keep_split = 1'b1;
      keep_uids = keep_uids + UW'(req_tkeep_i[16*g+15]);
    end
  end
  assign keep_full    = &req_tkeep_i;
  // A beat before tlast carries UPB whole UIDs; the tlast beat a contiguous low run of bytes
  // (at least one UID, so byte 0 kept). A run that is not a whole number of UIDs is a partial
  // UID.
  assign keep_bad     = req_tlast_i ? (!keep_contig || !req_tkeep_i[0]) : !keep_full;
  assign keep_partial = req_tlast_i && !keep_bad && keep_split;

  assign req_tready_o = !zero_q && (halted || bb_cnt_q == '0);
  assign req_take     = req_tvalid_i && req_tready_o && !halted;

  // The UID at the head of the buffer, byte 0 in [127:120].
  always_comb begin
    die_uid = '0;
    for (int u = 0; u < UPB; u++) begin
      if (IW'(u) == bb_idx_q) begin
        for (int j = 0; j < 16; j++) die_uid[127-8*j -: 8] = bb_q[128*u + 8*j +: 8];
      end
    end
  end

  // ---------------------------------------------------------------------------------------
  // Dispatch into sym_die, strictly in request order.
  // ---------------------------------------------------------------------------------------
  logic         sym_busy_q;          // a die is in sym_die
  logic [63:0]  sym_seq_q;
  logic [127:0] sym_uid_q;
  logic         sym_last_q;
  logic         mgmt_busy, cmd_busy, disp_ok, disp_err;

  // A LOAD_KIK, INSTANTIATE or RESEED pending or running (STATUS.CMD_BUSY) holds requests; so
  // does a d*G self-test (it has engine 0). The other self-tests run beside the requests.
  assign cmd_busy  = ((mst_q != MIdle) && !st_running) || pend_kik_q || pend_inst_q ||
                     pend_reseed_q;
  assign mgmt_busy = cmd_busy || st_dg;
  // A request needs a KIK, an instantiated DRBG and an unspent reseed interval; the card
  // checks the first two itself (no DRBG round trip), the interval is sym_die's answer.
  assign disp_err  = (bb_cnt_q != '0) && !halted && !zero_q && !mgmt_busy &&
                     (!inst_q || !kik_valid_q || reseed_req_q);
  assign disp_ok   = (bb_cnt_q != '0) && !halted && !zero_q && !mgmt_busy && !disp_err &&
                     !sym_busy_q;
  assign die_req_valid = disp_ok;

  // After a failed LOAD_KIK, sym_die's copy of the old KIK is cleared too, once no die is in
  // sym_die (its KDF is idle then; no new die starts while the command runs).
  assign kik_clr = (mst_q == MKikClr) && !sym_busy_q;

  // ---------------------------------------------------------------------------------------
  // Engines and their slots.
  // ---------------------------------------------------------------------------------------
  logic [NE-1:0] eng_busy_q;        // slot holds a die (from hand-off to record load)
  logic [NE-1:0] eng_d_valid, eng_d_ready, eng_q_valid, eng_q_ready, eng_q_err;
  logic [63:0]   slot_seq_q  [NE];
  logic [127:0]  slot_uid_q  [NE];
  logic [319:0]  slot_wrap_q [NE];
  logic          slot_last_q [NE];
  logic [255:0]  eng_x [NE];
  logic [255:0]  eng_y [NE];
  logic [255:0]  eng_d [NE];

  // The engine the next die goes to: the free engine with the lowest index, chosen a cycle
  // ahead into a register (pick_q, one-hot; none in the cycle after a hand-off), so that the
  // hand-off's enables (the slots, the engine's d) start from flops. Chosen in the same cycle,
  // the engines' states and sym_die's response ran through 5 LUT levels into every slot
  // register (5.4 ns by the timing model at NE = 4, growing with NE). A picked engine stays
  // ready: it is idle and nothing but a hand-off or ZEROIZE starts it (d*G takes engine 0 only
  // with no die on the card). An engine that frees is picked a cycle later than before.
  logic [NE-1:0] pick_q, pick_d;
  logic          free_found;
  logic [EW-1:0] free_idx;
  always_comb begin
    pick_d = '0;
    for (int e = NE - 1; e >= 0; e--) begin
      if (!eng_busy_q[e] && eng_d_ready[e]) begin
        pick_d    = '0;
        pick_d[e] = 1'b1;
      end
    end
    free_idx = '0;
    for (int e = 0; e < NE; e++)
      if (pick_q[e]) free_idx = EW'(e);
  end
  assign free_found = |pick_q;

  logic handoff, sym_fail;
  assign sym_fail      = die_rsp_valid && (die_err != 2'd0);
  assign handoff       = die_rsp_valid && (die_err == 2'd0) && free_found && !zero_q;
  // ready does not wait for valid: sym_die's error and response start from its flops, and a
  // ready built from them ran back into sym_die's key wrap in 6 LUT levels (5.2 ns, model)
  assign die_rsp_ready = !zero_q && (free_found || (die_err != 2'd0));

  // The table of multiples of G: one p256_rom with TwoPorts (one block-RAM table) per
  // pair of engines, engine 2p on port A and 2p + 1 on port B; with NE odd the last table's
  // port B is idle.
  localparam int unsigned NT = (NE + 1) / 2;
  logic [9:0]   rom_addr [2 * NT];
  logic [511:0] rom_data [2 * NT];
  if (NE % 2 == 1) begin : g_rom_idle
    assign rom_addr[NE] = 10'd0;
    logic unused_rom;
    assign unused_rom = ^rom_data[NE];
  end
  for (genvar t = 0; t < NT; t++) begin : g_rom
    p256_rom #(.RomFile(RomFile), .TwoPorts(1'b1)) u_rom (
      .clk_i,
      .addr_i   (rom_addr[2 * t]),
      .data_o   (rom_data[2 * t]),
      .addr_b_i (rom_addr[2 * t + 1]),
      .data_b_o (rom_data[2 * t + 1])
    );
  end

  for (genvar e = 0; e < NE; e++) begin : g_eng
    logic unused_dbg;
    logic [3:0] unused_off;
    logic unused_sel, unused_busy;
    // Engine 0 also takes the self-test's d (ST_DATA) while the card is idle.
    if (e == 0) begin : g_st
      assign eng_d_valid[e] = (handoff && pick_q[e]) || (mst_q == MStDg);
      assign eng_d[e]       = (mst_q == MStDg) ? st_data_q[2047 -: 256] :
                              eng_d_valid[e] ? die_scalar : 256'h0;
    end else begin : g_die
      assign eng_d_valid[e] = handoff && pick_q[e];
      assign eng_d[e]       = eng_d_valid[e] ? die_scalar : 256'h0;
    end
    p256_keygen #(.RomFile(RomFile), .ExtRom(1'b1)) u_keygen (
      .clk_i, .rst_ni,
      .zeroize_i       (zero_q),
      .d_valid_i       (eng_d_valid[e]),
      .d_ready_o       (eng_d_ready[e]),
      .d_i             (eng_d[e]),
      .scan_seed_i     (lfsr_q),
      .q_valid_o       (eng_q_valid[e]),
      .q_ready_i       (eng_q_ready[e]),
      .q_x_o           (eng_x[e]),
      .q_y_o           (eng_y[e]),
      .q_err_o         (eng_q_err[e]),
      .busy_o          (unused_busy),
      .dbg_secret_nz_o (unused_dbg),
      .dbg_scan_off_o  (unused_off),
      .dbg_scan_sel_o  (unused_sel),
      .rom_addr_o      (rom_addr[e]),
      .rom_data_i      (rom_data[e])
    );
  end

  // Order FIFO: engine indices in sequence order.
  logic [EW-1:0] ord_q [NE];
  logic [EW-1:0] ord_rd_q, ord_wr_q;
  logic [CW-1:0] ord_cnt_q;
  logic [EW-1:0] head;
  assign head = ord_q[ord_rd_q];

  // ---------------------------------------------------------------------------------------
  // Record stage: a 1024-bit shift register, record byte 0 in [1023:1016]; beat lane i is
  // record byte (beat * BW + i).
  // ---------------------------------------------------------------------------------------
  logic [1023:0]  rec_q;
  logic           rec_valid_q, rec_last_q, rec_cut_q;
  logic [BTW-1:0] rec_beat_q;
  logic           rec_free, rec_load;

  assign rec_free = !rec_valid_q ||
                    (rec_tready_i && rec_beat_q == BTW'(BEATS - 1));
  assign rec_load = (ord_cnt_q != '0) && eng_q_valid[head] && rec_free && !zero_q;
  always_comb begin
    // written per engine, not as eng_q_ready[head]: Yosys builds an indexed write of a packed
    // vector from a 32-bit shift with a negated index (a 31-bit carry chain on the path)
    for (int e = 0; e < NE; e++) eng_q_ready[e] = rec_load && (head == EW'(e));
    // d*G runs only on an idle card (no record to load), so engine 0's result is the test's.
    if (mst_q == MStDgWait) eng_q_ready[0] = 1'b1;
  end

  assign rec_tvalid_o = rec_valid_q;
  assign rec_tkeep_o  = {BW{1'b1}};
  assign rec_tlast_o  = rec_valid_q && (rec_beat_q == BTW'(BEATS - 1)) &&
                        (rec_last_q || rec_cut_q);
  always_comb begin
    for (int i = 0; i < BW; i++) rec_tdata_o[8*i +: 8] = rec_q[1023-8*i -: 8];
  end

  // ---------------------------------------------------------------------------------------
  // AXI4-Lite.
  // ---------------------------------------------------------------------------------------
  logic        bvalid_q, rvalid_q;
  logic [31:0] rdata_q;
  logic        wr, rd;
  logic [11:0] waddr, raddr;
  logic [31:0] wmask;

  // The write is taken into a stage (wr_q: address, data, strobes, and one-hot word enables
  // of the wide registers decoded from the address) and applied from it in the next cycle;
  // B answers once it is applied, so a read issued after the response sees the write. Written
  // straight from the handshake, the strobe and the address decode reached 3,092 register
  // bits through 6 LUT levels (5.6 ns by the timing model); from the stage each word's enable
  // is a flop of fan-out 32 and CTRL's pulses (ctrl_q: ZEROIZE resets every secret) are flops.
  logic        wr_q, wbad_q, wst_ok_q;
  logic [11:0] waddr_q;
  logic [31:0] wdata_q, wmask_q;
  logic [5:0]  ctrl_q;
  logic [11:0] we_entropy_q, we_pers_q;
  logic [9:0]  we_kikw_q;
  logic [7:0]  we_st_key_q;
  logic [63:0] we_st_data_q;

  assign s_awready_o = s_awvalid_i && s_wvalid_i && !wr_q && !bvalid_q;
  assign s_wready_o  = s_awready_o;
  assign wr          = s_awready_o;
  assign s_bvalid_o  = bvalid_q;
  assign s_bresp_o   = 2'b00;
  assign s_arready_o = !rvalid_q;
  assign rd          = s_arvalid_i && s_arready_o;
  assign s_rvalid_o  = rvalid_q;
  assign s_rdata_o   = rdata_q;
  assign s_rresp_o   = 2'b00;
  assign waddr       = {s_awaddr_i[11:2], 2'b00};
  assign raddr       = {s_araddr_i[11:2], 2'b00};
  assign wmask       = {{8{s_wstrb_i[3]}}, {8{s_wstrb_i[2]}}, {8{s_wstrb_i[1]}},
                        {8{s_wstrb_i[0]}}};

  function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] data,
                                        input logic [31:0] mask);
    merge = (old & ~mask) | (data & mask);
  endfunction

  // Which addresses exist (reads of secrets and write-only registers return 0).
  function automatic logic mapped(input logic [11:0] a);
    mapped = 1'b0;
    unique case (a)
      card_regs_pkg::ID, card_regs_pkg::VERSION, card_regs_pkg::CAPS, card_regs_pkg::SCRATCH,
      card_regs_pkg::CTRL, card_regs_pkg::STATUS, card_regs_pkg::ERR,
      card_regs_pkg::ERR_SEQ_LO, card_regs_pkg::ERR_SEQ_HI, card_regs_pkg::IRQ_ENABLE,
      card_regs_pkg::IRQ_STATUS, card_regs_pkg::SEQ_START_LO, card_regs_pkg::SEQ_START_HI,
      card_regs_pkg::SEQ_NEXT_LO, card_regs_pkg::SEQ_NEXT_HI,
      card_regs_pkg::RESEED_INTERVAL_LO, card_regs_pkg::RESEED_INTERVAL_HI,
      card_regs_pkg::PERS_LEN, card_regs_pkg::ST_OP, card_regs_pkg::ST_LEN,
      card_regs_pkg::ST_RESULT_LEN: mapped = 1'b1;
      default: begin
        if (a >= card_regs_pkg::ENTROPY && a < card_regs_pkg::ENTROPY + 12'd48) mapped = 1'b1;
        if (a >= card_regs_pkg::PERS && a < card_regs_pkg::PERS + 12'd48) mapped = 1'b1;
        if (a >= card_regs_pkg::KIK_WRAPPED && a < card_regs_pkg::KIK_WRAPPED + 12'd40)
          mapped = 1'b1;
        if (a >= card_regs_pkg::ST_KEY && a < card_regs_pkg::ST_KEY + 12'd32) mapped = 1'b1;
        if (a >= card_regs_pkg::ST_DATA && a < card_regs_pkg::ST_DATA + 12'd256) mapped = 1'b1;
        if (a >= card_regs_pkg::ST_RESULT && a < card_regs_pkg::ST_RESULT + 12'd256)
          mapped = 1'b1;
      end
    endcase
  endfunction

  logic [31:0] caps, status;
  assign caps = {16'h0, 1'b1 /* SCAN_RANDOMIZED */, 1'b1 /* SELFTEST */, 4'd1 /* WPID-1 */,
                 BwLog2, 5'(NE)};
  logic card_busy;   // requests accepted whose records have not left yet
  assign card_busy = (bb_cnt_q != '0) || sym_busy_q || (|eng_busy_q) || rec_valid_q;
  assign status = {23'h0, cmd_busy, st_done_q, st_busy, zeroized_q, halted, card_busy,
                   reseed_req_q, inst_q, kik_valid_q};

  function automatic logic [31:0] read_reg(input logic [11:0] a);
    read_reg = 32'h0;
    unique case (a)
      card_regs_pkg::ID:                 read_reg = card_regs_pkg::CardId;
      card_regs_pkg::VERSION:            read_reg = {card_regs_pkg::VersionMajor,
                                                     card_regs_pkg::VersionMinor};
      card_regs_pkg::CAPS:               read_reg = caps;
      card_regs_pkg::SCRATCH:            read_reg = scratch_q;
      card_regs_pkg::STATUS:             read_reg = status;
      card_regs_pkg::ERR:                read_reg = {24'h0, err_q};
      card_regs_pkg::ERR_SEQ_LO:         read_reg = err_seq_q[31:0];
      card_regs_pkg::ERR_SEQ_HI:         read_reg = err_seq_q[63:32];
      card_regs_pkg::IRQ_ENABLE:         read_reg = {30'h0, irq_en_q};
      card_regs_pkg::IRQ_STATUS:         read_reg = {30'h0, irq_st_q};
      card_regs_pkg::SEQ_START_LO:       read_reg = seq_start_q[31:0];
      card_regs_pkg::SEQ_START_HI:       read_reg = seq_start_q[63:32];
      card_regs_pkg::SEQ_NEXT_LO:        read_reg = seq_out_q[31:0];
      card_regs_pkg::SEQ_NEXT_HI:        read_reg = seq_out_q[63:32];
      card_regs_pkg::RESEED_INTERVAL_LO: read_reg = reseed_int_q[31:0];
      card_regs_pkg::RESEED_INTERVAL_HI: read_reg = {16'h0, reseed_int_q[47:32]};
      card_regs_pkg::PERS_LEN:           read_reg = pers_len_q;
      card_regs_pkg::ST_OP:              read_reg = {29'h0, st_op_q};
      card_regs_pkg::ST_LEN:             read_reg = st_len_q;
      card_regs_pkg::ST_RESULT_LEN:      read_reg = {23'h0, st_rlen_q};
      default: begin                     // CTRL, secrets, wo, unmapped: 0
        for (int k = 0; k < 64; k++)
          if (a == card_regs_pkg::ST_RESULT + 12'(4 * k)) read_reg = st_result_q[2047-32*k -: 32];
      end
    endcase
  endfunction

  // ---------------------------------------------------------------------------------------
  // The one sequential block of the card's own state.
  // ---------------------------------------------------------------------------------------
  logic [7:0]  err_set;
  logic [63:0] err_at;
  logic [5:0]  ctrl_w;
  logic [7:0]  err_kept;   // ERR after this cycle's clears
  assign ctrl_w   = ctrl_q;
  assign err_kept = ctrl_w[4] ? 8'h0 :
                    (wr_q && waddr_q == card_regs_pkg::ERR) ?
                        (err_q & ~(wdata_q[7:0] & wmask_q[7:0])) : err_q;

  // The management command taken in MIdle this cycle (one at a time, in this priority).
  logic go_kik, go_inst, go_reseed, go_st, st_ok, st_refuse, st_fail;
  assign go_kik    = (mst_q == MIdle) && !ctrl_w[3] && pend_kik_q;
  assign go_inst   = (mst_q == MIdle) && !ctrl_w[3] && !pend_kik_q && pend_inst_q;
  assign go_reseed = (mst_q == MIdle) && !ctrl_w[3] && !pend_kik_q && !pend_inst_q &&
                     pend_reseed_q && !sym_busy_q && !disp_ok;
  assign go_st     = (mst_q == MIdle) && !ctrl_w[3] && !go_kik && !go_inst && !go_reseed &&
                     pend_st_q;
  // d*G needs engine 0: only on an idle card (no request buffered or in flight).
  assign st_ok     = st_len_ok_q && ((st_op_q != OpDg) || !card_busy);
  assign st_refuse = go_st && !st_ok;
  assign st_fail   = !ctrl_w[3] &&
                     (((mst_q == MStKwWait) && kw_rsp_valid && kw_rsp_err) ||
                      ((mst_q == MStDgWait) && eng_q_valid[0] && eng_q_err[0]));

  always_comb begin
    err_set = '0;
    err_at  = seq_assign_q;
    if (req_take && keep_bad) err_set[ETkeep] = 1'b1;
    if (req_take && keep_partial) err_set[EPartial] = 1'b1;
    if (disp_err) begin
      if (!inst_q) err_set[ENotInst] = 1'b1;
      else if (!kik_valid_q) err_set[ENoKik] = 1'b1;
      else err_set[EReseed] = 1'b1;
    end
    if (sym_fail && !zero_q) begin
      if (die_err == 2'd1) err_set[EReseed] = 1'b1;
      else err_set[ENotInst] = 1'b1;
      err_at = sym_seq_q;
    end
    if (mst_q == MKikWait && kw_rsp_valid && kw_rsp_err && !ctrl_w[3]) err_set[EUnwrap] = 1'b1;
    if (mst_q == MDrbgWait && drbg_rsp_valid && drbg_rsp_err != 2'd0)
      err_set[ENotInst] = 1'b1;
    if (wbad_q || (rd && !mapped(raddr))) err_set[EBus] = 1'b1;
    // Self-test: refused (ST_OP/ST_LEN, d*G on a busy card), a second ST_START while one is
    // pending or running (ignored), an unwrap integrity failure, d = 0 or d >= n.
    if (st_refuse || st_fail || (ctrl_w[5] && st_busy)) err_set[ESelftest] = 1'b1;
  end


  logic [15:0] entropy_fold;
  always_comb begin
    entropy_fold = 16'h0;
    for (int i = 0; i < 24; i++) entropy_fold = entropy_fold ^ entropy_q[16*i +: 16];
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      scratch_q     <= '0;
      irq_en_q      <= '0;
      irq_st_q      <= '0;
      seq_start_q   <= '0;
      reseed_int_q  <= '0;
      reseed_live_q <= '0;
      pers_len_q    <= '0;
      entropy_q     <= '0;
      pers_q        <= '0;
      kikw_q        <= '0;
      st_op_q       <= '0;
      st_len_q      <= '0;
      st_key_q      <= '0;
      st_data_q     <= '0;
      st_done_q     <= 1'b0;
      pend_st_q     <= 1'b0;
      st_blk_q      <= '0;
      st_fed_q      <= 1'b0;
      err_q         <= '0;
      err_seq_q     <= '0;
      kik_q         <= '0;
      kik_valid_q   <= 1'b0;
      new_kik_q     <= 1'b0;
      inst_q        <= 1'b0;
      reseed_req_q  <= 1'b0;
      zeroized_q    <= 1'b0;
      zero_q        <= 1'b0;
      pend_kik_q    <= 1'b0;
      pend_inst_q   <= 1'b0;
      pend_reseed_q <= 1'b0;
      seq_assign_q  <= '0;
      seq_out_q     <= '0;
      lfsr_q        <= 16'hace1;
      mst_q         <= MIdle;
      m_reseed_q    <= 1'b0;
      bb_q          <= '0;
      bb_cnt_q      <= '0;
      bb_idx_q      <= '0;
      bb_last_q     <= 1'b0;
      sym_busy_q    <= 1'b0;
      sym_seq_q     <= '0;
      sym_uid_q     <= '0;
      sym_last_q    <= 1'b0;
      eng_busy_q    <= '0;
      ord_rd_q      <= '0;
      ord_wr_q      <= '0;
      ord_cnt_q     <= '0;
      rec_q         <= '0;
      rec_valid_q   <= 1'b0;
      rec_last_q    <= 1'b0;
      rec_cut_q     <= 1'b0;
      rec_beat_q    <= '0;
      bvalid_q      <= 1'b0;
      rvalid_q      <= 1'b0;
      rdata_q       <= '0;
      pick_q        <= '0;
      wr_q          <= 1'b0;
      wbad_q        <= 1'b0;
      wst_ok_q      <= 1'b0;
      waddr_q       <= '0;
      wdata_q       <= '0;
      wmask_q       <= '0;
      ctrl_q        <= '0;
      we_entropy_q  <= '0;
      we_pers_q     <= '0;
      we_kikw_q     <= '0;
      we_st_key_q   <= '0;
      we_st_data_q  <= '0;
      kik_sel_q     <= 1'b0;
      kw_req_kik_q  <= 1'b0;
      kw_req_st_q   <= 1'b0;
      kw_n_q        <= '0;
      kw_unwrap_q   <= 1'b0;
      st_src_q      <= '0;
      st_out_q      <= '0;
      st_len_ok_q   <= 1'b0;
      for (int e = 0; e < NE; e++) begin
        slot_seq_q[e]  <= '0;
        slot_uid_q[e]  <= '0;
        slot_wrap_q[e] <= '0;
        slot_last_q[e] <= 1'b0;
        ord_q[e]       <= '0;
      end
    end else begin
      zero_q <= 1'b0;
      lfsr_q <= {lfsr_q[14:0], lfsr_q[15] ^ lfsr_q[13] ^ lfsr_q[12] ^ lfsr_q[10]};
      st_len_ok_q <= st_len_ok;
      st_out_q    <= st_out_len;

      // ---- AXI4-Lite ----
      if (bvalid_q && s_bready_i) bvalid_q <= 1'b0;
      if (rvalid_q && s_rready_i) rvalid_q <= 1'b0;
      if (rd) begin
        rvalid_q <= 1'b1;
        rdata_q  <= read_reg(raddr);
      end
      // the write stage: taken here, applied below in the next cycle
      // The self-test's inputs are held while it runs: whether a write may change them is
      // decided here, at the handshake (no ST_START can be applied between the handshake and
      // the apply, writes are one at a time), so st_busy does not fan out to their 2,336 bits.
      wr_q     <= wr;
      wbad_q   <= wr && !mapped(waddr);
      wst_ok_q <= !st_busy;
      ctrl_q <= (wr && waddr == card_regs_pkg::CTRL) ? (s_wdata_i[5:0] & wmask[5:0]) : 6'h0;
      if (wr) begin
        waddr_q <= waddr;
        wdata_q <= s_wdata_i;
        wmask_q <= wmask;
      end
      for (int k = 0; k < 12; k++) begin
        we_entropy_q[k] <= wr && waddr == card_regs_pkg::ENTROPY + 12'(4 * k);
        we_pers_q[k]    <= wr && waddr == card_regs_pkg::PERS + 12'(4 * k);
      end
      for (int k = 0; k < 10; k++)
        we_kikw_q[k] <= wr && waddr == card_regs_pkg::KIK_WRAPPED + 12'(4 * k);
      for (int k = 0; k < 8; k++)
        we_st_key_q[k] <= wr && waddr == card_regs_pkg::ST_KEY + 12'(4 * k) && !st_busy;
      for (int k = 0; k < 64; k++)
        we_st_data_q[k] <= wr && waddr == card_regs_pkg::ST_DATA + 12'(4 * k) && !st_busy;
      if (wr_q) begin
        bvalid_q <= 1'b1;
        unique case (waddr_q)
          card_regs_pkg::SCRATCH:      scratch_q <= merge(scratch_q, wdata_q, wmask_q);
          card_regs_pkg::IRQ_ENABLE:
            irq_en_q <= (irq_en_q & ~wmask_q[1:0]) | (wdata_q[1:0] & wmask_q[1:0]);
          card_regs_pkg::SEQ_START_LO: seq_start_q[31:0] <= merge(seq_start_q[31:0], wdata_q,
                                                                  wmask_q);
          card_regs_pkg::SEQ_START_HI: seq_start_q[63:32] <= merge(seq_start_q[63:32], wdata_q,
                                                                   wmask_q);
          card_regs_pkg::RESEED_INTERVAL_LO:
            reseed_int_q[31:0] <= merge(reseed_int_q[31:0], wdata_q, wmask_q);
          card_regs_pkg::RESEED_INTERVAL_HI:
            reseed_int_q[47:32] <= (reseed_int_q[47:32] & ~wmask_q[15:0]) |
                                   (wdata_q[15:0] & wmask_q[15:0]);
          card_regs_pkg::PERS_LEN:     pers_len_q <= merge(pers_len_q, wdata_q, wmask_q);
          // the self-test's inputs are held while it runs (wst_ok_q, above)
          card_regs_pkg::ST_OP:
            if (wst_ok_q) st_op_q <= (st_op_q & ~wmask_q[2:0]) | (wdata_q[2:0] & wmask_q[2:0]);
          card_regs_pkg::ST_LEN:       if (wst_ok_q) st_len_q <= merge(st_len_q, wdata_q, wmask_q);
          card_regs_pkg::IRQ_STATUS:   irq_st_q <= irq_st_q & ~(wdata_q[1:0] & wmask_q[1:0]);
          default: ;
        endcase
      end
      // the wide registers, one word enable each (the stage decoded the address)
      for (int k = 0; k < 12; k++) begin
        if (we_entropy_q[k])
          entropy_q[383-32*k -: 32] <= merge(entropy_q[383-32*k -: 32], wdata_q, wmask_q);
        if (we_pers_q[k])
          pers_q[383-32*k -: 32] <= merge(pers_q[383-32*k -: 32], wdata_q, wmask_q);
      end
      for (int k = 0; k < 10; k++)
        if (we_kikw_q[k])
          kikw_q[319-32*k -: 32] <= merge(kikw_q[319-32*k -: 32], wdata_q, wmask_q);
      for (int k = 0; k < 8; k++)
        if (we_st_key_q[k])
          st_key_q[255-32*k -: 32] <= merge(st_key_q[255-32*k -: 32], wdata_q, wmask_q);
      for (int k = 0; k < 64; k++)
        if (we_st_data_q[k])
          st_data_q[2047-32*k -: 32] <= merge(st_data_q[2047-32*k -: 32], wdata_q, wmask_q);
      if (ctrl_w[0]) pend_kik_q <= 1'b1;
      if (ctrl_w[1]) pend_inst_q <= 1'b1;
      if (ctrl_w[2]) pend_reseed_q <= 1'b1;
      if (ctrl_w[5] && !st_busy) begin
        pend_st_q   <= 1'b1;
        st_done_q   <= 1'b0;
      end

      // ---- errors (cleared by CTRL.CLEAR_ERR or write-1-to-clear of ERR) ----
      err_q <= err_kept | err_set;
      if (err_set != '0) begin
        irq_st_q[0] <= 1'b1;
        if (err_kept == '0) err_seq_q <= err_at;
      end else if (err_kept == '0) begin
        err_seq_q <= '0;
      end
      if (sym_fail && !zero_q && die_err == 2'd1) reseed_req_q <= 1'b1;

      // ---- request sink ----
      if (halted || err_set != '0) begin
        bb_cnt_q <= '0;     // a halt drops the UIDs not yet started
        bb_idx_q <= '0;
      end else if (req_take) begin
        if (!keep_bad && !keep_partial) begin
          bb_q      <= req_tdata_i;
          bb_cnt_q  <= req_tlast_i ? keep_uids : UW'(UPB);
          bb_idx_q  <= '0;
          bb_last_q <= req_tlast_i;
        end
      end else if (disp_ok && die_req_ready) begin
        bb_cnt_q <= bb_cnt_q - 1'b1;
        bb_idx_q <= bb_idx_q + 1'b1;
      end

      // ---- dispatch ----
      if (disp_ok && die_req_ready) begin
        sym_busy_q   <= 1'b1;
        sym_seq_q    <= seq_assign_q;
        sym_uid_q    <= die_uid;
        sym_last_q   <= bb_last_q && (bb_cnt_q == UW'(1));
        seq_assign_q <= seq_assign_q + 64'd1;
        new_kik_q    <= 1'b0;
      end
      if (sym_fail) begin
        sym_busy_q   <= 1'b0;
        seq_assign_q <= sym_seq_q;   // the refused die drew nothing
      end

      // ---- hand-off to an engine ----
      pick_q <= handoff ? '0 : pick_d;
      if (handoff) begin
        sym_busy_q      <= 1'b0;
        ord_q[ord_wr_q] <= free_idx;
        ord_wr_q        <= (ord_wr_q == EW'(NE - 1)) ? '0 : ord_wr_q + 1'b1;
      end
      for (int e = 0; e < NE; e++) begin
        if (handoff && pick_q[e]) begin
          slot_seq_q[e]  <= sym_seq_q;
          slot_uid_q[e]  <= sym_uid_q;
          slot_wrap_q[e] <= die_wrapped;
          slot_last_q[e] <= sym_last_q;
        end
      end

      // ---- record stage ----
      if (rec_valid_q && rec_tready_i) begin
        rec_q      <= rec_q << DW;
        rec_beat_q <= rec_beat_q + 1'b1;
        if (rec_beat_q == BTW'(BEATS - 1)) begin
          rec_valid_q <= 1'b0;
          rec_cut_q   <= 1'b0;
          rec_beat_q  <= '0;
        end
      end
      if (rec_load) begin
        rec_q       <= {slot_seq_q[head], slot_uid_q[head], eng_x[head], eng_y[head],
                        slot_wrap_q[head]};
        rec_valid_q <= 1'b1;
        rec_last_q  <= slot_last_q[head];
        rec_beat_q  <= '0;
        slot_wrap_q[head] <= '0;
        ord_rd_q    <= (ord_rd_q == EW'(NE - 1)) ? '0 : ord_rd_q + 1'b1;
        seq_out_q   <= slot_seq_q[head] + 64'd1;
      end
      ord_cnt_q <= ord_cnt_q + CW'(handoff) - CW'(rec_load);
      // handoff sets eng_busy_q of a free engine, rec_load clears the head's: never the same
      // (per engine, as eng_q_ready)
      for (int e = 0; e < NE; e++) begin
        if (handoff && pick_q[e]) eng_busy_q[e] <= 1'b1;
        if (rec_load && head == EW'(e)) eng_busy_q[e] <= 1'b0;
      end

      // ---- management: LOAD_KIK, INSTANTIATE, RESEED, one at a time ----
      unique case (mst_q)
        MIdle: begin
          if (go_kik) begin
            pend_kik_q   <= 1'b0;
            mst_q        <= MKik;
            kik_sel_q    <= 1'b1;
            kw_req_kik_q <= 1'b1;
            kw_n_q       <= 6'd4;
            kw_unwrap_q  <= 1'b1;
          end else if (go_inst) begin
            // Instantiate drops the work in flight: a one-cycle zeroize of sym_die and the
            // engines (the KIK register is kept and reloaded into sym_die with the next die).
            pend_inst_q <= 1'b0;
            zero_q      <= 1'b1;
            mst_q       <= MFlush;
          end else if (go_reseed) begin
            pend_reseed_q <= 1'b0;
            m_reseed_q    <= 1'b1;
            mst_q         <= MDrbg;
          end else if (go_st) begin
            pend_st_q <= 1'b0;
            st_blk_q  <= '0;
            st_fed_q  <= 1'b0;
            if (!st_ok) begin
              st_done_q   <= 1'b1;   // refused: ERR.SELFTEST, no result
              irq_st_q[1] <= 1'b1;
            end else begin
              unique case (st_op_q)
                OpEnc, OpDec: begin
                  mst_q    <= MStBlk;
                  st_src_q <= 5'b00001;
                end
                OpCmac: begin
                  mst_q    <= MStCmInit;
                  st_src_q <= 5'b00010;
                end
                OpWrap, OpUnwrap: begin
                  mst_q       <= MStKw;
                  st_src_q    <= (st_op_q == OpUnwrap) ? 5'b01000 : 5'b00100;
                  kw_req_st_q <= 1'b1;
                  kw_n_q      <= st_n;
                  kw_unwrap_q <= (st_op_q == OpUnwrap);
                end
                default: begin
                  mst_q    <= MStDg;
                  st_src_q <= 5'b10000;
                end
              endcase
            end
          end
        end
        MKik: begin
          if (kw_req_ready) begin
            mst_q        <= MKikWait;
            kw_req_kik_q <= 1'b0;
          end
        end
        MKikWait: begin
          if (kw_rsp_valid) begin
            mst_q       <= kw_rsp_err ? MKikClr : MIdle;
            kik_sel_q   <= 1'b0;
            kikw_q      <= '0;
            kik_q       <= kw_rsp_err ? 256'h0 : kw_rsp_key[1983 -: 256];
            kik_valid_q <= !kw_rsp_err;
            new_kik_q   <= !kw_rsp_err;
            if (!kw_rsp_err) zeroized_q <= 1'b0;
          end
        end
        MKikClr: if (kik_clr) mst_q <= MIdle;
        MFlush: begin
          m_reseed_q    <= 1'b0;
          reseed_live_q <= reseed_int_q;
          inst_q        <= 1'b0;
          mst_q         <= MDrbg;
        end
        MDrbg: if (drbg_req_ready) mst_q <= MDrbgWait;
        MDrbgWait: begin
          if (drbg_rsp_valid) begin
            mst_q     <= MIdle;
            entropy_q <= '0;
            pers_q    <= '0;
            if (drbg_rsp_err == 2'd0) begin
              reseed_req_q <= 1'b0;
              if (!m_reseed_q) begin
                inst_q       <= 1'b1;
                seq_assign_q <= seq_start_q;
                seq_out_q    <= seq_start_q;
                lfsr_q       <= lfsr_q ^ entropy_fold;
                new_kik_q    <= kik_valid_q;
              end
            end
          end
        end
        // ---- self-test ----
        MStBlk: if (c_req_ready) mst_q <= MStBlkWait;
        MStBlkWait: begin
          if (c_rsp_valid) begin
            mst_q       <= MIdle;
            st_src_q    <= '0;
            st_done_q   <= 1'b1;
            irq_st_q[1] <= 1'b1;
          end
        end
        MStCmInit: if (cm_init_ready) mst_q <= MStCmMsg;
        MStCmMsg: begin
          if (cm_msg_valid && cm_msg_ready) begin
            st_blk_q <= st_blk_q + 4'd1;
            if (cm_msg_last) begin
              st_fed_q <= 1'b1;
              mst_q    <= MStCmTag;
            end
          end
        end
        MStCmTag: begin
          if (cm_tag_valid) begin
            mst_q       <= MIdle;
            st_src_q    <= '0;
            st_done_q   <= 1'b1;
            irq_st_q[1] <= 1'b1;
          end
        end
        MStKw: begin
          if (kw_req_ready) begin
            mst_q       <= MStKwWait;
            kw_req_st_q <= 1'b0;
          end
        end
        MStKwWait: begin
          if (kw_rsp_valid) begin   // an integrity failure returns nothing (ERR.SELFTEST)
            mst_q       <= MIdle;
            st_src_q    <= '0;
            st_done_q   <= 1'b1;
            irq_st_q[1] <= 1'b1;
          end
        end
        MStDg: if (eng_d_ready[0]) mst_q <= MStDgWait;
        MStDgWait: begin
          if (eng_q_valid[0]) begin   // d = 0 or d >= n: ERR.SELFTEST, no result
            mst_q       <= MIdle;
            st_src_q    <= '0;
            st_done_q   <= 1'b1;
            irq_st_q[1] <= 1'b1;
          end
        end
        default: begin
          mst_q        <= MIdle;
          kik_sel_q    <= 1'b0;
          kw_req_kik_q <= 1'b0;
          kw_req_st_q  <= 1'b0;
          st_src_q     <= '0;
        end
      endcase

      // ---- flush (instantiate) and zeroize: drop the work in flight ----
      if (zero_q) begin
        pick_q      <= '0;
        bb_cnt_q    <= '0;
        bb_idx_q    <= '0;
        sym_busy_q  <= 1'b0;
        eng_busy_q  <= '0;
        ord_rd_q    <= '0;
        ord_wr_q    <= '0;
        ord_cnt_q   <= '0;
        new_kik_q   <= kik_valid_q;
        for (int e = 0; e < NE; e++) slot_wrap_q[e] <= '0;
        // a record already on the stream is finished (it is public) and ends the packet
        if (rec_valid_q) rec_cut_q <= 1'b1;
      end
      if (ctrl_w[3]) begin
        zero_q        <= 1'b1;
        zeroized_q    <= 1'b1;
        kik_q         <= '0;
        kik_valid_q   <= 1'b0;
        new_kik_q     <= 1'b0;
        inst_q        <= 1'b0;
        reseed_req_q  <= 1'b0;
        entropy_q     <= '0;
        pers_q        <= '0;
        kikw_q        <= '0;
        pend_kik_q    <= 1'b0;
        pend_inst_q   <= 1'b0;
        pend_reseed_q <= 1'b0;
        mst_q         <= MIdle;
        kik_sel_q     <= 1'b0;
        kw_req_kik_q  <= 1'b0;
        kw_req_st_q   <= 1'b0;
        st_src_q      <= '0;
        // the self-test's key and data, and any self-test pending or running (its result:
        // st_clr below)
        pend_st_q     <= 1'b0;
        st_key_q      <= '0;
        st_data_q     <= '0;
        st_done_q     <= 1'b0;
        st_fed_q      <= 1'b0;
        st_blk_q      <= '0;
      end
    end
  end

  // ---- the self-test's result ----
  // Its own block: cleared by ZEROIZE or an accepted ST_START (a flop's pulse, a reset), loaded
  // from the running operation's source (st_src_q, a one-hot AND-OR) when it succeeds.
  logic          st_clr, st_cap;
  logic [2047:0] st_res_in;
  assign st_clr = ctrl_w[3] || (ctrl_w[5] && !st_busy);
  assign st_cap = ((mst_q == MStBlkWait) && c_rsp_valid) ||
                  ((mst_q == MStCmTag) && cm_tag_valid) ||
                  ((mst_q == MStKwWait) && kw_rsp_valid && !kw_rsp_err) ||
                  ((mst_q == MStDgWait) && eng_q_valid[0] && !eng_q_err[0]);
  assign st_res_in = ({2048{st_src_q[0]}} & {c_rsp_data, 1920'h0}) |
                     ({2048{st_src_q[1]}} & {cm_tag, 1920'h0}) |
                     ({2048{st_src_q[2]}} & kw_rsp_wrapped) |
                     ({2048{st_src_q[3]}} & {kw_rsp_key, 64'h0}) |
                     ({2048{st_src_q[4]}} & {eng_x[0], eng_y[0], 1536'h0});
  always_ff @(posedge clk_i) begin
    if (!rst_ni || st_clr) begin
      st_result_q <= '0;
      st_rlen_q   <= '0;
    end else if (st_cap) begin
      st_result_q <= st_res_in;
      st_rlen_q   <= st_out_q;
    end
  end

  assign irq_o = |(irq_st_q & irq_en_q);

  logic unused;
  assign unused = ^{die_rejects, die_cycles, eng_q_err, st_len_q[31:9], cm_keyed, cm_rest[8:5],
                    s_awaddr_i[1:0], s_araddr_i[1:0]};

endmodule

`default_nettype wire
