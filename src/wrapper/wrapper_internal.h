// Parts of the wrapper module shared between its files.
#pragma once

#include <memory>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "arrow_zerobus/wrapper.h"

namespace arrow_zerobus::internal {

// GET the Unity Catalog table and map its columns (ArrowSchemaFromUnityCatalogTable); the errors
// of FetchUnityCatalogDescriptor.
arrow::Result<std::shared_ptr<arrow::Schema>> FetchUnityCatalogTableSchema(
    const UnityCatalogOptions& options);

}  // namespace arrow_zerobus::internal
