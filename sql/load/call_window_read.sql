select coalesce(max(calls), 0)::integer as calls
from api_call_windows
where platform = $platform
  and account_id = $account_id
  and window_kind = $window_kind
  and window_index = $window_index
