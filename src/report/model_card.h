// report::LoadModelCard: what a classifier's model card and metadata file say about it, for the
// HTML report's model section (report/html_report.h).
//
// In:  the classifier file's path and the name its metadata gives it.
// Out: the card's title, "Intended use" paragraphs and "Known limits" items, as Markdown inline
//      text (the report escapes it and renders only **bold** and `code`), and facts from the
//      metadata file (calibration, threshold calibration, input size, architecture).
// Threading: reads files; thread-safe.
#ifndef DEEPSCAN_REPORT_MODEL_CARD_H_
#define DEEPSCAN_REPORT_MODEL_CARD_H_

#include <string>
#include <utility>
#include <vector>

namespace deepscan::report {

// What a model's card and metadata file say, for the report's model section. Empty fields are
// left out of the page.
struct ModelCard {
  std::string source;                                      // the card file read; "" = no card found
  std::string title;                                       // its first heading, without "# "
  std::vector<std::string> intended_use;                   // the "Intended use" paragraphs (Markdown inline)
  std::vector<std::string> limits;                         // the "Known limits" items (Markdown inline)
  std::vector<std::pair<std::string, std::string>> facts;  // from <model>.json: calibration, input, ...
};

// The card of the classifier `model_path` whose metadata names it `model_name`: the first of
// <model>.md and MODEL_CARD.md beside it whose first heading contains `model_name` (a card of
// another model is never shown), and the facts of <model>.json. Never fails: what cannot be read
// stays empty.
ModelCard LoadModelCard(const std::string& model_path, const std::string& model_name);

}  // namespace deepscan::report

#endif  // DEEPSCAN_REPORT_MODEL_CARD_H_
