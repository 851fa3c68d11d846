// Text from outside made safe to keep and show (core/text.h).
#include "core/text.h"

#include <gtest/gtest.h>

namespace tp {
namespace {

TEST(TextTest, PrintableIsUtf8WithoutControlsAndCutAtACharacter) {
  EXPECT_EQ(Printable("plain", 200), "plain");
  EXPECT_EQ(Printable("line\r\nnext\x7f", 200), "line  next ");
  EXPECT_EQ(Printable("caf\xC3\xA9 \xE6\x97\xA5", 200), "caf\xC3\xA9 \xE6\x97\xA5");
  // Bytes that break UTF-8 (Latin-1, a lone continuation, an overlong form,
  // a surrogate, a sequence cut short) each become U+FFFD.
  EXPECT_EQ(Printable("\xE9t\xE9", 200), "\xEF\xBF\xBDt\xEF\xBF\xBD");
  EXPECT_EQ(Printable("a\x80z", 200), "a\xEF\xBF\xBDz");
  EXPECT_EQ(Printable("\xC0\xAF", 200), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Printable("\xED\xA0\x80", 200), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Printable("ok\xE6\x97", 200), "ok\xEF\xBF\xBD\xEF\xBF\xBD");
  // The C1 controls too.
  EXPECT_EQ(Printable("a\xC2\x85z", 200), "a z");
  // At most `max` bytes, never half a character, then "...".
  EXPECT_EQ(Printable("abcdef", 4), "abcd...");
  EXPECT_EQ(Printable("abc\xC3\xA9z", 4), "abc...");
  EXPECT_EQ(Printable("abc\xC3\xA9", 5), "abc\xC3\xA9");
  EXPECT_EQ(Printable("", 0), "");
  EXPECT_EQ(Printable("x", 0), "...");
}

TEST(TextTest, ValidUtf8ReplacesOnlyWhatADatabaseCannotKeep) {
  EXPECT_EQ(ValidUtf8("keeps\ttabs\nand caf\xC3\xA9"), "keeps\ttabs\nand caf\xC3\xA9");
  EXPECT_EQ(ValidUtf8("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(ValidUtf8("a\xF4\x90\x80\x80z"),  // past U+10FFFF
            "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(InvalidUtf8At(ValidUtf8("\xC3(\xA0\xA1\xE2\x82")), std::nullopt);
  // NUL too, which no database keeps in text.
  EXPECT_EQ(ValidUtf8(std::string("a\0b", 3)),
            "a\xEF\xBF\xBD"
            "b");
}

}  // namespace
}  // namespace tp
