// A push sink's circuit (delivery/circuit.h): closed until `threshold`
// failures in a row; open for the initial delay, doubled at each failed
// probe up to the maximum; half-open lets one attempt through; a success
// closes it; standing by while another daemon delivers the sink.
#include "delivery/circuit.h"

#include <gtest/gtest.h>

#include "harness.h"

namespace tp {
namespace {

using testing::At;

TEST(CircuitTest, OpensAfterTheThresholdBacksOffAndRecovers) {
  Circuit circuit(3, Millis(1'000), Millis(3'000));
  Instant now = At("2026-12-04T10:00:00Z");
  EXPECT_EQ(circuit.Slots(now, 1, 4), 3u);
  EXPECT_EQ(circuit.Failed(now, "HTTP 503"), "");
  EXPECT_EQ(circuit.Failed(now, "HTTP 503"), "");
  EXPECT_EQ(circuit.Failed(now, "HTTP 502"),
            "failing (3 in a row, last: HTTP 502); pausing deliveries for 1000 ms");
  EXPECT_TRUE(circuit.open());
  EXPECT_EQ(circuit.open_until(), now + Millis(1'000));
  EXPECT_EQ(circuit.Slots(now + Millis(999), 0, 4), 0u);
  EXPECT_EQ(circuit.Health("s").state, "open");
  EXPECT_EQ(circuit.Health("s").consecutive_failures, 3);

  // Half-open: one probe, and none while it is in flight.
  now += Millis(1'000);
  EXPECT_EQ(circuit.Slots(now, 0, 4), 1u);
  EXPECT_EQ(circuit.Slots(now, 1, 4), 0u);
  EXPECT_EQ(circuit.Health("s").state, "half-open");
  // The probe fails: twice as long, then capped.
  EXPECT_NE(circuit.Failed(now, "timeout").find("for 2000 ms"), std::string::npos);
  now += Millis(2'000);
  EXPECT_EQ(circuit.Slots(now, 0, 4), 1u);
  EXPECT_NE(circuit.Failed(now, "timeout").find("for 3000 ms"), std::string::npos);
  now += Millis(3'000);
  EXPECT_EQ(circuit.Slots(now, 0, 4), 1u);

  EXPECT_EQ(circuit.Succeeded(), "recovered; delivering again");
  EXPECT_FALSE(circuit.open());
  EXPECT_EQ(circuit.Slots(now, 0, 4), 4u);
  EXPECT_EQ(circuit.Health("s").state, "ok");
  EXPECT_EQ(circuit.Health("s").last_error, "");
  EXPECT_EQ(circuit.Succeeded(), "");  // already closed: nothing to log
}

// Another daemon delivers the sink (a stream on a shared store): standing
// by, not failing, whatever the state under it; that state is kept, the
// back-off with it, so that daemons which all fail in turn still back off,
// and shown again once this daemon delivers the sink.
TEST(CircuitTest, StandingByForAnotherDaemonKeepsTheStateUnder) {
  Circuit circuit(1, Millis(1'000), Millis(8'000));
  Instant now = At("2026-12-04T10:00:00Z");
  EXPECT_EQ(circuit.StandBy(true), "delivered by another daemon; standing by");
  EXPECT_EQ(circuit.StandBy(true), "");  // no change: nothing to log
  EXPECT_EQ(circuit.Health("s").state, "standby");
  EXPECT_FALSE(circuit.Health("s").failing);
  EXPECT_EQ(circuit.StandBy(false), "delivered by this daemon");
  EXPECT_EQ(circuit.Health("s").state, "ok");

  EXPECT_NE(circuit.Failed(now, "timeout").find("for 1000 ms"), std::string::npos);
  EXPECT_EQ(circuit.StandBy(true), "");  // open: no try made, nothing known
  EXPECT_EQ(circuit.Health("s").state, "open");
  now += Millis(1'000);
  EXPECT_EQ(circuit.Slots(now, 0, 4), 1u);  // half-open
  EXPECT_EQ(circuit.StandBy(true), "delivered by another daemon; standing by");
  const SinkHealth h = circuit.Health("s");
  EXPECT_EQ(h.state, "standby");
  EXPECT_FALSE(h.failing);
  EXPECT_EQ(h.last_error, "timeout");
  EXPECT_EQ(circuit.Slots(now, 0, 4), 1u);  // still one try at a time
  // Its turn comes, and fails: twice the last pause.
  EXPECT_NE(circuit.Failed(now, "timeout").find("for 2000 ms"), std::string::npos);
  EXPECT_TRUE(circuit.Health("s").failing);
  now += Millis(2'000);
  EXPECT_EQ(circuit.Slots(now, 0, 1), 1u);
  EXPECT_EQ(circuit.StandBy(true), "delivered by another daemon; standing by");
  // Its turn comes with nothing to send: half-open again, as it was.
  EXPECT_EQ(circuit.StandBy(false), "delivered by this daemon");
  EXPECT_EQ(circuit.Health("s").state, "half-open");
  EXPECT_TRUE(circuit.Health("s").failing);
  EXPECT_EQ(circuit.Succeeded(), "recovered; delivering again");
  EXPECT_EQ(circuit.Health("s").state, "ok");
  EXPECT_NE(circuit.Failed(now, "timeout").find("for 1000 ms"), std::string::npos);
}

}  // namespace
}  // namespace tp
