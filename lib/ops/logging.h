// The daemon's log: spdlog's default logger, on stderr.
//
// Under systemd, stderr is a stream to the journal (JOURNAL_STREAM names its
// device and inode): lines then carry no timestamp (the journal adds one) and
// start with a syslog priority, "<3>" for errors, "<4>" warnings, "<6>" info,
// "<7>" debug, which journald turns into the entry's level. Elsewhere each
// line starts with an RFC 3339 timestamp and the level's name.
#pragma once

#include <string_view>

#include "config/rules.h"  // kLogLevels
#include "core/status.h"

namespace tp {

// Installs the default logger named `name`, at info.
void SetupLogging(std::string_view name);
// Whether stderr is connected to the journal (as SetupLogging decided).
bool LoggingToJournal();
// Sets the level by its name (one of kLogLevels).
Status SetLogLevel(std::string_view level);

}  // namespace tp
