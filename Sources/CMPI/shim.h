// Open MPI (Debian libopenmpi-dev) for Swift. MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE…)
// are macros over the addresses of globals, which Swift cannot import: these functions return them.
#include <mpi.h>
static inline MPI_Comm     swmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype swmpi_float(void)      { return MPI_FLOAT; }
static inline MPI_Datatype swmpi_double(void)     { return MPI_DOUBLE; }
static inline MPI_Datatype swmpi_int(void)        { return MPI_INT; }
static inline MPI_Datatype swmpi_uint16(void)     { return MPI_UINT16_T; }
static inline MPI_Op       swmpi_sum(void)        { return MPI_SUM; }
static inline MPI_Op       swmpi_max(void)        { return MPI_MAX; }
static inline void        *swmpi_in_place(void)   { return MPI_IN_PLACE; }
static inline MPI_Errhandler swmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Datatype swmpi_char(void)       { return MPI_CHAR; }
static inline MPI_Datatype swmpi_int64(void)      { return MPI_INT64_T; }
static inline MPI_Status  *swmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request  swmpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Datatype swmpi_uint8(void)      { return MPI_UINT8_T; }
