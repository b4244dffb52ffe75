// --vision-query: mean | box:x0,y0,x1,y1 | text-peak[:LAYER]. The syntax is checked here; whether the
// box lies on the image and the layer is among --layers is checked per item and per run (src/run/).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "attnmap/error.hpp"
#include "attnmap/options.hpp"

namespace attnmap {

namespace {

[[noreturn]] void bad_query(const std::string& spec, const std::string& why) {
  throw Error(ErrorKind::Usage, "--vision-query '" + spec + "': " + why +
                                    "; use mean, box:x0,y0,x1,y1 (original-image pixels) or text-peak[:LAYER]");
}

double coordinate(const std::string& item, const std::string& spec) {
  try {
    size_t used = 0;
    const double v = std::stod(item, &used);
    if (used != item.size() || !std::isfinite(v)) throw std::invalid_argument(item);
    if (v < 0) bad_query(spec, "coordinate '" + item + "' is negative");
    return v;
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    bad_query(spec, "'" + item + "' is not a number");
  }
}

std::string number_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

}  // namespace

VisionQuery parse_vision_query(const std::string& spec) {
  VisionQuery query;
  if (spec == "mean") return query;
  if (spec.rfind("box:", 0) == 0) {
    query.kind = VisionQuery::Kind::Box;
    std::vector<double> values;
    std::stringstream items(spec.substr(4));
    for (std::string item; std::getline(items, item, ',');) values.push_back(coordinate(item, spec));
    if (values.size() != 4 || spec.back() == ',') bad_query(spec, "a box needs four numbers x0,y0,x1,y1");
    query.box = {values[0], values[1], values[2], values[3]};
    if (!(query.box[0] < query.box[2]) || !(query.box[1] < query.box[3])) {
      bad_query(spec, "the box is empty; need x0 < x1 and y0 < y1");
    }
    return query;
  }
  if (spec == "text-peak") {
    query.kind = VisionQuery::Kind::TextPeak;
    return query;
  }
  if (spec.rfind("text-peak:", 0) == 0) {
    query.kind = VisionQuery::Kind::TextPeak;
    const std::string layer = spec.substr(10);
    if (layer.empty() || layer.size() > 6 || layer.find_first_not_of("0123456789") != std::string::npos) {
      bad_query(spec, "'" + layer + "' is not a decoder layer number");
    }
    query.layer = std::stoi(layer);
    return query;
  }
  bad_query(spec, "unknown query");
}

std::string VisionQuery::text() const {
  switch (kind) {
    case Kind::Mean:
      return "mean";
    case Kind::Box:
      return "box:" + number_text(box[0]) + "," + number_text(box[1]) + "," + number_text(box[2]) + "," +
             number_text(box[3]);
    case Kind::TextPeak:
      return layer ? "text-peak:" + std::to_string(*layer) : "text-peak";
  }
  return "mean";
}

}  // namespace attnmap
